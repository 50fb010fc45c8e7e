"""How far a pre-rating can be trusted, measured on answers whose quality is known.

    python bench/judge.py [--questions N]       # the configured model, or the bundled local one

For each answerable public and dev question (with `answer_facts`) the real retriever
over DATA_DIR's index finds the excerpts the answering model would read (the chat or
the compact layout, as the answer chain picks for the model). Three answers are made:

- good: the excerpts' line that holds the most expected facts, cited ("[1] ...");
- bad, another question's: the good answer of the next question, just as fluent;
- bad, a false abstention: "The documentation doesn't seem to cover this.", while
  the excerpts do hold the facts.

`qa.judge.AnswerJudge` pre-rates each one. Printed: how many it gets right per kind,
the balanced accuracy (0.5 = chance), replies with no verdict, and seconds per call.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answer import answerable_questions, open_real_retriever  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402

from qa import local_llm  # noqa: E402
from qa.chain import AnswerChain  # noqa: E402
from qa.judge import AnswerJudge  # noqa: E402
from qa.llm import make_chat_model, model_label, uses_local_model  # noqa: E402
from qa.quotes import readable, units  # noqa: E402
from settings import get_settings  # noqa: E402

ABSTAINED = "The documentation doesn't seem to cover this."


def good_answer(context: str, facts: list[str]) -> str | None:
    """The excerpts' line holding the most expected facts, cited; None when no line holds one."""
    best, best_count = "", 0
    for line in units(context):
        count = sum(fact.lower() in line.lower() for fact in facts)
        if count > best_count:
            best, best_count = line, count
    return f"{readable(best)} [1]" if best_count else None


def cases(chain: AnswerChain, questions: list[dict]) -> list[tuple[str, str, str, str]]:
    """(kind, question, context, answer to judge) for every question whose excerpts hold a fact."""
    found = []
    for q in questions:
        answer = chain.answer(q["question"])
        if answer.abstained:
            continue
        good = good_answer(answer.context, q["answer_facts"])
        if good:
            found.append((q["question"], answer.context, good))
    out = []
    for i, (question, context, good) in enumerate(found):
        other = found[(i + 1) % len(found)][2]
        out += [
            ("good", question, context, good),
            ("bad: another question's", question, context, other),
            ("bad: false abstention", question, context, ABSTAINED),
        ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions", type=int, default=30, help="answerable questions to build answers from"
    )
    args = parser.parse_args()
    settings = get_settings()
    print(f"Pre-rating answers (qa.judge) with {model_label(settings)}, DATA_DIR={settings.data_dir}")
    retriever = open_real_retriever(settings)
    if retriever is None:
        return 1
    compact = uses_local_model(settings)
    chain = AnswerChain(retriever, FakeListChatModel(responses=["-"]), settings, compact=compact)
    judged = cases(chain, answerable_questions(args.questions))
    print(f"  {len(judged) // 3} questions whose excerpts hold an expected fact, 3 answers each")
    if not judged:
        print("  nothing to pre-rate: ask more questions (--questions)")
        return 1
    with local_llm.running(settings) if compact else nullcontext():
        judge = AnswerJudge(make_chat_model(settings, streaming=False, max_tokens=120))
        right: dict[str, list[int]] = {}
        seconds, silent = [], 0
        for kind, question, context, answer in judged:
            started = time.perf_counter()
            rating = judge.rate(question, answer, context)
            seconds.append(time.perf_counter() - started)
            silent += rating is None
            wanted = "good" if kind == "good" else "bad"
            right.setdefault(kind, []).append(int(rating is not None and rating.verdict == wanted))
    print(f"  {'answer':<26} {'rated right':>12}")
    for kind, hits in right.items():
        print(f"  {kind:<26} {sum(hits):>5}/{len(hits):<6} {sum(hits) / len(hits):.2f}")
    good = sum(right["good"]) / len(right["good"])
    bad = sum(sum(v) for k, v in right.items() if k != "good") / sum(
        len(v) for k, v in right.items() if k != "good"
    )
    print(f"  balanced accuracy {(good + bad) / 2:.2f} (0.50 = chance); no verdict in {silent} replies")
    print(f"  seconds per pre-rating: p50 {statistics.median(seconds):.2f}, max {max(seconds):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
