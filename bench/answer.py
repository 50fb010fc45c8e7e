"""Answer-path speed on this machine.

    python bench/answer.py [--questions N] [--llm-runs N] [--no-llm]

1. Overhead of everything but the model (condense, skipped without history; retrieve;
   prompt build), p50/p95 over the dev questions, with the real retriever over DATA_DIR's
   index (run `python ingest.py` first) and an instant fake model, for both prompt styles, and
   with a rejection for wrong passages near every question (what `lowered_by` costs at worst).
2. The local model (SmolLM2 via xllamacpp): time to first token and generation tokens/s
   for real prompts, compact (what the local model gets) and full chat style.
2b. Stopping it: from the chat's Stop (the stream's stop event) or a closed stream (a browser
   gone) to the end of the stream and to the server being idle, for answers that would have
   run to 600 tokens, against the time the rest of the answer would have taken.
1b. Reusing reviewers' verdicts (qa.precedents): embedding N judged questions, adding one,
   and looking a question up among them, p50/p95.
3. What a reader gets from the local model: the share of the questions' `answer_facts` in
   its answers, in the quotes folded under them ("What the sources say"), and in either.

Figures are printed, never asserted: speed targets live here, not in timed tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_core.documents import Document  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402

from qa import local_llm  # noqa: E402
from qa.chain import AnswerChain  # noqa: E402
from qa.llm import make_chat_model  # noqa: E402
from qa.prompts import answer_prompt, focus_context, format_context, select_context  # noqa: E402
from qa.types import Preferred, RetrievalResult  # noqa: E402
from settings import Settings, get_settings  # noqa: E402

QUESTION_FILES = [ROOT / "eval" / "dev.jsonl", ROOT.parent / "shared" / "eval" / "public.jsonl"]
FALLBACK_QUESTIONS = [
    "how do i stop label studio from opening a new browser tab every time I launch the server",
    "how do i opt out of the usage statistics label studio collects?",
    "my webhook receiver is slow and LS gives up on it. can I raise the timeout?",
    "whats the cli command that generates the boilerplate for my own ml backend?",
    "env variables to switch label studio from sqlite to my own postgres server?",
]
SAMPLE_DOCS = [  # used for the model figures when there is no index yet
    Document(
        page_content=(
            "Webhook connections time out after 1 second. You can adjust the timeout by setting an "
            "environment variable, `WEBHOOK_TIMEOUT`. If the webhook URL is inaccessible by Label Studio, "
            "you can see this in a traceback in the logs. Label Studio does not retry webhook connections "
            "that fail. You can see successful webhook deliveries in the logs in DEBUG mode."
        ),
        metadata={"source": "docs/source/guide/webhooks.md", "section": "Troubleshoot a webhook connection"},
    ),
    Document(
        page_content=(
            "Label Studio collects usage statistics including the number of page visits, number of "
            "annotations, and data types being used in labeling configurations that you set up. You can "
            "disable data collection by setting the environment variable `COLLECT_ANALYTICS` to `False`."
        ),
        metadata={"source": "docs/source/guide/security.md", "section": "Information collected"},
    ),
    Document(
        page_content=(
            "| `-b`, `--no-browser` | N/A | `False` | Do not automatically open a web browser when starting "
            "Label Studio. |\n| `--data-dir` | `LABEL_STUDIO_BASE_DATA_DIR` | OS-specific | Directory to use "
            "to store all application-related data. |"
        ),
        metadata={"source": "docs/source/guide/start.md", "section": "Command line arguments"},
    ),
]


class TimedRetriever:
    """Wraps a retriever to separate the search time from the chain's own overhead."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.last_ms = 0.0

    def search(self, query: str, k: int | None = None, prefer: Sequence[Preferred] = ()) -> RetrievalResult:
        started = time.perf_counter()
        result = self.inner.search(query, k=k, prefer=prefer)  # type: ignore[attr-defined]
        self.last_ms = (time.perf_counter() - started) * 1000
        return result


class SampleRetriever:
    """Returns the sample chunks for any query (model timing only, not retrieval)."""

    def search(self, query: str) -> RetrievalResult:
        return RetrievalResult(query=query, documents=list(SAMPLE_DOCS), confidence=1.0)


def question_rows(files: list[Path]) -> list[dict]:
    """Every question of the question files that exist, in file order."""
    return [
        json.loads(line)
        for path in files
        if path.is_file()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def load_questions(limit: int) -> list[str]:
    questions = [q["question"] for q in question_rows(QUESTION_FILES)]
    return (questions or FALLBACK_QUESTIONS)[:limit]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def open_real_retriever(settings: Settings) -> object | None:
    index = settings.index_dir
    if not index.is_dir() or not any(index.iterdir()):
        print(f"  no index at {index}: run `python ingest.py` first for the retrieval figures")
        return None
    from qa.retrieval import open_retriever  # lazy: loads the embedding model

    started = time.perf_counter()
    retriever = open_retriever(settings)
    print(f"  retriever opened in {time.perf_counter() - started:.1f} s")
    return retriever


def bench_overhead(settings: Settings, retriever: object, questions: list[str]) -> None:
    print(f"\n1. Everything but the model (no history: condense skipped), {len(questions)} questions")
    header = f"{'prompt style':<13} {'total p50':>9} {'p95':>7} {'max':>7}   {'search p50':>10} {'p95':>7}"
    print(f"  {header}   abstained")
    timed = TimedRetriever(retriever)
    lowered = 0
    for style, compact, precedents in (
        ("chat", False, None),
        ("compact", True, None),
        ("chat+rejected", False, rejections_near(settings, retriever, questions)),
    ):
        chain = AnswerChain(
            timed, FakeListChatModel(responses=["ok [1]"]), settings, compact=compact, precedents=precedents
        )
        for question in questions[:2]:  # warm-up: first embedding call, lazy imports
            chain.answer(question)
        totals, searches, abstained = [], [], 0
        for question in questions:
            answer = chain.answer(question)
            totals.append(answer.retrieval_ms)
            searches.append(timed.last_ms)
            abstained += answer.abstained
            lowered += bool(answer.lowered_by)
        print(
            f"  {style:<13} {pct(totals, 50):>9.1f} {pct(totals, 95):>7.1f} {max(totals):>7.1f}   "
            f"{pct(searches, 50):>10.1f} {pct(searches, 95):>7.1f}   {abstained}/{len(questions)}"
        )
    print("  (ms; total = condense + search + prompt build, i.e. everything before the model is called)")
    print(
        "  chat+rejected: each question near a rejection for wrong passages of its first passage (the"
        f" search made again without the drop); {lowered} of {len(questions)} answers name it (`lowered_by`)"
    )


def rejections_near(settings: Settings, retriever: object, questions: list[str]) -> object:
    """Verdicts that make every question pay for `lowered_by`: a rejection, for wrong passages, of
    an answer to a reworded copy of it that cited its first passage (the worst case)."""
    from qa.precedents import WRONG_SOURCES, Judged, JudgedAnswers

    judged = []
    for i, question in enumerate(questions):
        first = retriever.search(question).documents[:1]  # type: ignore[attr-defined]
        cited = tuple((str(d.metadata["source"]), str(d.metadata.get("section", ""))) for d in first)
        judged.append(
            Judged(
                id=str(i),
                question=f"{question} (asked before)",
                answer="a",
                verdict="bad",
                cited=cited,
                problems=(WRONG_SOURCES,),
            )
        )
    precedents = JudgedAnswers(
        retriever.embeddings,  # type: ignore[attr-defined]
        settings.reviewed_answer_match,
        related_from=settings.reviewed_sources_match,
    )
    precedents.update(judged)
    return precedents


def bench_precedents(retriever: object, questions: list[str], judged_count: int) -> None:
    from qa.precedents import Judged, JudgedAnswers

    print(f"\n1b. Reviewers' verdicts reused: lookup among {judged_count} judged answers")
    pool = [f"{questions[i % len(questions)]} ({i})" for i in range(judged_count)]  # distinct texts
    judged = [Judged(id=str(i), question=q, answer="a", verdict="good") for i, q in enumerate(pool)]
    precedents = JudgedAnswers(retriever.embeddings)  # type: ignore[attr-defined]
    started = time.perf_counter()
    precedents.update(judged)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    precedents.update([*judged, Judged(id="new", question="one more question", answer="a", verdict="bad")])
    added = time.perf_counter() - started
    times, found = [], 0
    for question in questions:
        started = time.perf_counter()
        found += precedents.find(question) is not None
        times.append((time.perf_counter() - started) * 1000)
    print(f"  first load {loaded:.1f} s, one more verdict {added * 1000:.0f} ms")
    print(
        f"  lookup p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms"
        f" ({found} of {len(questions)} questions found their copy among them)"
    )


def stream_timed(llm: object, messages: list) -> tuple[float, float, int, int]:
    """(seconds to first token, seconds generating, output tokens, prompt tokens) of one call."""
    started = time.perf_counter()
    first = last = 0.0
    usage: dict = {}
    pieces = 0
    for chunk in llm.stream(messages):  # type: ignore[attr-defined]
        now = time.perf_counter()
        if chunk.content:
            first = first or now
            last = now
            pieces += 1
        if getattr(chunk, "usage_metadata", None):
            usage = dict(chunk.usage_metadata)
    output_tokens = int(usage.get("output_tokens") or pieces)
    return first - started, max(last - first, 1e-9), output_tokens, int(usage.get("input_tokens") or 0)


def bench_local_model(settings: Settings, retriever: object | None, questions: list[str], runs: int) -> None:
    print(f"\n2. Local model {local_llm.model_name(settings)}, {settings.local_llm_threads} threads")
    with local_llm.running(settings) as server:
        print(f"  server at {server.base_url} ({'started' if server.owned else 'already running'})")
        # cache_prompt off: with it, llama.cpp reuses a shared prompt prefix and TTFT looks better than it is
        llm = make_chat_model(settings, stream_usage=True, max_tokens=128, extra_body={"cache_prompt": False})
        source = retriever or SampleRetriever()
        print(f"  {'prompt':<8} {'prompt tok':>10} {'TTFT p50 s':>11} {'TTFT max s':>11} {'gen tok/s':>10}")
        for compact in (True, False):
            spec = answer_prompt(compact).template()
            ttfts, rates, prompt_tokens = [], [], []
            stream_timed(llm, spec.format_messages(context="warm up", reviewed="", question="hi"))
            for question in questions[:runs]:
                docs = source.search(question).documents  # type: ignore[attr-defined]
                if compact:
                    pool = docs[: settings.local_llm_context_chunks]
                    context, _ = focus_context(question, pool, settings.local_llm_context_chars)
                else:
                    context = format_context(select_context(docs, len(docs), settings.context_max_chars))
                ttft, gen, out_tokens, in_tokens = stream_timed(
                    llm, spec.format_messages(context=context, reviewed="", question=question)
                )
                ttfts.append(ttft)
                rates.append(out_tokens / gen)
                prompt_tokens.append(in_tokens)
            style = "compact" if compact else "chat"
            print(
                f"  {style:<8} {statistics.median(prompt_tokens):>10.0f} {statistics.median(ttfts):>11.2f} "
                f"{max(ttfts):>11.2f} {statistics.median(rates):>10.1f}"
            )


def bench_stop(settings: Settings, retriever: object | None, questions: list[str], runs: int) -> None:
    """How fast Stop (or a closed stream) frees the local model, which would otherwise write on."""
    tokens = 600
    print(f"\n2b. Stopping the local model after 5 pieces of an answer that would run to {tokens} tokens")
    llm = make_chat_model(settings, max_tokens=tokens, stop=None, extra_body={"ignore_eos": True})
    chain = AnswerChain(retriever or SampleRetriever(), llm, settings)
    port = settings.local_llm_port

    def idle_after(moment: float) -> float:
        while local_llm.is_writing(port) and time.perf_counter() - moment < 60:
            time.sleep(0.005)
        return time.perf_counter() - moment

    print(f"  {'how':<7} {'ends p50 ms':>12} {'ends max ms':>12} {'idle p50 ms':>12} {'idle max ms':>12}")
    for how in ("stop", "close"):
        ends, idles = [], []
        for question in questions[:runs]:
            stop = threading.Event()
            stream = chain.stream(question, stop=stop)
            for _ in range(5):
                next(stream)
            moment = time.perf_counter()
            if how == "stop":
                stop.set()
                for _ in stream:
                    pass
            else:
                stream.close()
            ends.append(time.perf_counter() - moment)
            idles.append(idle_after(moment))
        figures = (statistics.median(ends), max(ends), statistics.median(idles), max(idles))
        print(f"  {how:<7}" + "".join(f" {seconds * 1000:>12.0f}" for seconds in figures))
    started = time.perf_counter()
    written = sum(1 for _ in llm.stream("Write a long story."))
    rate = written / (time.perf_counter() - started)
    print(f"  the rest of the answer, unstopped: ~{(tokens - 5) / rate:.1f} s at {rate:.0f} pieces/s")


def answerable_questions(limit: int) -> list[dict]:
    """Questions with `answer_facts`, public set first (it is the one the README reports)."""
    return [q for q in question_rows(QUESTION_FILES[::-1]) if q.get("answer_facts")][:limit]


def bench_facts(settings: Settings, retriever: object, limit: int) -> None:
    questions = answerable_questions(limit)
    print(f"\n3. Facts a reader sees, local model ({len(questions)} answerable questions)")
    with local_llm.running(settings):
        chain = AnswerChain(retriever, make_chat_model(settings), settings)
        counts = {"answer": 0, "quotes": 0, "either": 0}
        total = 0
        for q in questions:
            answer = chain.answer(q["question"])
            said = answer.text.lower()
            quoted = " ".join(s.quote for s in answer.cited).lower()
            for fact in (f.lower() for f in q["answer_facts"]):
                total += 1
                counts["answer"] += fact in said
                counts["quotes"] += fact in quoted
                counts["either"] += fact in said or fact in quoted
    for where, n in counts.items():
        label = "in either" if where == "either" else f"in the {where}"
        print(f"  {label:<14} {n:>4}/{total} = {n / max(total, 1):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=60, help="questions for the overhead figures")
    parser.add_argument("--llm-runs", type=int, default=5, help="prompts per style for the model figures")
    parser.add_argument("--no-llm", action="store_true", help="skip the local model figures")
    parser.add_argument("--fact-questions", type=int, default=40, help="questions for the facts figures")
    parser.add_argument("--judged", type=int, default=1000, help="judged answers for the reuse figures")
    args = parser.parse_args()
    settings = get_settings()
    questions = load_questions(args.questions)
    print(f"Answer path on this machine (DATA_DIR={settings.data_dir})")
    retriever = open_real_retriever(settings)
    if retriever is not None:
        bench_overhead(settings, retriever, questions)
        bench_precedents(retriever, questions, args.judged)
    if not args.no_llm:
        bench_local_model(settings, retriever, questions, args.llm_runs)
        with local_llm.running(settings):
            bench_stop(settings, retriever, questions, args.llm_runs)
        if retriever is not None:
            bench_facts(settings, retriever, args.fact_questions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
