"""Measure retrieval on a question set: `python -m qa.evaluate QUESTIONS.jsonl [--k 5] [--json OUT] [--calibrate]`.

The question format is that of ../shared/eval/public.jsonl (see eval/README.md).
Over answerable questions: hit@k (a gold file among the files of the top k
chunks), MRR@k (1 / rank of the first chunk from a gold file) and fact
recall@k (share of `answer_facts` found, case-insensitively, in the text of
the top k chunks). Over unanswerable ones: the abstain rate; over answerable
ones: the false-abstain rate. The same figures per `kind` show which sort of
question is weak, and each abstention says why (a term the docs never use, a
price no passage states, or a low evidence score).

`--calibrate` then shows, for the docs ingested in DATA_DIR, how the abstain
threshold (`ABSTAIN_THRESHOLD`) trades abstentions on the unanswerable questions
against false abstentions on the answerable ones, and suggests the lowest threshold
that abstains most often while false abstentions stay at or under `--max-false-abstain`
(default 0). It needs both kinds of question to suggest one, and says so.
`bench/retrieval.py --calibrate` prints the same over the benchmark's questions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from qa.types import RetrievalResult


class QuestionFileError(ValueError):
    """The questions file is missing or malformed; the message names the line."""


def load_questions(path: Path) -> list[dict]:
    if not path.exists():
        raise QuestionFileError(f"{path} does not exist.")
    questions = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except ValueError as exc:
            raise QuestionFileError(f"{path}:{n}: not JSON ({exc}).") from exc
        if not isinstance(q, dict) or not str(q.get("question", "")).strip():
            raise QuestionFileError(f"{path}:{n}: each line needs a 'question'.")
        q.setdefault("id", f"line-{n}")
        q.setdefault("gold_sources", [])
        q.setdefault("answer_facts", [])
        q.setdefault("kind", "unanswerable" if not q["gold_sources"] else "")
        questions.append(q)
    if not questions:
        raise QuestionFileError(f"{path} has no questions.")
    return questions


def is_answerable(q: dict) -> bool:
    return q.get("kind") != "unanswerable" and bool(q.get("gold_sources"))


def score_question(q: dict, result: RetrievalResult, k: int) -> dict:
    """One row of the report: what was retrieved and how it scores."""
    from qa.retrieval import abstains_by_rule

    docs = result.documents[:k]
    sources = [str(d.metadata.get("source", "")) for d in docs]
    gold = set(q.get("gold_sources") or [])
    first = next((i + 1 for i, s in enumerate(sources) if s in gold), None)
    text = "\n".join(d.page_content for d in docs).lower()
    facts = q.get("answer_facts") or []
    found = [f for f in facts if f.lower() in text]
    return {
        "id": q["id"],
        "question": q["question"],
        "kind": q.get("kind", ""),
        "answerable": is_answerable(q),
        "gold_sources": sorted(gold),
        "retrieved": [
            {"source": s, "section": d.metadata.get("section", ""), "score": d.metadata.get("score", 0.0)}
            for s, d in zip(sources, docs, strict=True)
        ],
        "hit": first is not None,
        "rank": first,
        "facts_found": found,
        "fact_recall": (len(found) / len(facts)) if facts else None,
        "abstained": result.abstain,
        "unknown_terms": list(result.unknown_terms),  # why it abstained, besides a low evidence score
        "unstated": result.unstated,
        "confidence": round(result.confidence, 4),  # the evidence score, compared with ABSTAIN_THRESHOLD
        # abstained by a rule whatever the threshold: a term the docs never use, a price none states
        "ruled": abstains_by_rule(result.unknown_terms, result.unstated, result.confidence),
        "ms": round(result.seconds * 1000, 1),
    }


def summarize(rows: list[dict], k: int) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    recalls = [r["fact_recall"] for r in answerable if r["fact_recall"] is not None]

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return round(statistics.fmean(values), 4) if values else 0.0

    return {
        f"hit@{k}": mean(1.0 if r["hit"] else 0.0 for r in answerable),
        f"mrr@{k}": mean(1.0 / r["rank"] if r["rank"] else 0.0 for r in answerable),
        f"fact_recall@{k}": mean(recalls),
        "abstain_rate": mean(1.0 if r["abstained"] else 0.0 for r in unanswerable),
        "false_abstain_rate": mean(1.0 if r["abstained"] else 0.0 for r in answerable),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }


def evaluate(
    questions: list[dict], search: Callable[[str, int], RetrievalResult], k: int = 5, progress: bool = True
) -> dict:
    rows = [
        score_question(q, search(q["question"], k), k)
        for q in tqdm(questions, desc="questions", disable=not progress, file=sys.stderr)
    ]
    kinds = sorted({r["kind"] or "-" for r in rows})
    by_kind = {kind: summarize([r for r in rows if (r["kind"] or "-") == kind], k) for kind in kinds}
    return {"metrics": summarize(rows, k), "by_kind": by_kind, "questions": rows}


def print_report(report: dict, k: int, console: Console | None = None) -> None:
    # piped or in CI, rich would cut the table to 80 columns and the sources to "docs/source/t…"
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"Retrieval over {len(report['questions'])} questions")
    table.add_column("id")
    table.add_column("kind")
    table.add_column(f"rank@{k}", justify="right")
    table.add_column("facts", justify="right")
    table.add_column("abstain")
    table.add_column("top source")
    for r in report["questions"]:
        facts = "" if r["fact_recall"] is None else f"{r['fact_recall']:.2f}"
        rank = "-" if not r["answerable"] else (str(r["rank"]) if r["rank"] else "miss")
        top = r["retrieved"][0]["source"] if r["retrieved"] else ""
        table.add_row(r["id"], r["kind"], rank, facts, abstain_reason(r), top)
    console.print(table)
    kinds = Table(title="By kind")
    for column in ("kind", "questions", f"hit@{k}", f"MRR@{k}", f"facts@{k}", "abstain", "false-ab"):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, m in report.get("by_kind", {}).items():
        answerable = m["answerable"] > 0

        def cell(name: str, show: bool, m: dict = m) -> str:
            return f"{m[name]:.3f}" if show else "-"

        kinds.add_row(
            kind,
            str(m["answerable"] + m["unanswerable"]),
            cell(f"hit@{k}", answerable),
            cell(f"mrr@{k}", answerable),
            cell(f"fact_recall@{k}", answerable),
            cell("abstain_rate", m["unanswerable"] > 0),
            cell("false_abstain_rate", answerable),
        )
    console.print(kinds)
    metrics = Table(title="Metrics")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for name, value in report["metrics"].items():
        metrics.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(metrics)


def abstain_reason(row: dict) -> str:
    """'' when it answered; else why it abstained: the terms the docs never use, a price, or the score."""
    if not row["abstained"]:
        return ""
    if row.get("unknown_terms"):
        return "unknown: " + ", ".join(row["unknown_terms"])
    if row.get("unstated"):
        return f"no {row['unstated']}"
    return f"score {row['confidence']:.2f}"


def store_label(retriever) -> str:  # noqa: ANN001 - a HybridRetriever
    """What a retriever answers from, for a report's header: "N chunks of REPO at COMMIT"."""
    state = retriever.state
    return f"{retriever.size} chunks of {state.repo or '?'} at {state.commit[:12] or '?'}"


CALIBRATION_THRESHOLDS = [round(0.5 + step * 0.02, 2) for step in range(31)]  # 0.50 ... 1.10


def print_calibration(rows: list[dict], max_false: float, current: float, source: str = "") -> None:
    """How abstentions and false abstentions move with the threshold (the threshold-free rules included).

    `rows` are `score_question` rows. The threshold it suggests is the lowest one that
    abstains most often while false abstentions stay at or under `max_false`: no higher than
    the questions need, so a covered question a little weaker than these still gets an answer.
    With only answerable questions (or only unanswerable ones) it shows the side it can,
    suggests nothing and says what to add.
    """
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    where = f" in {source}" if source else ""
    print(
        f"\nabstain threshold calibration over {len(answerable)} answerable, "
        f"{len(unanswerable)} unanswerable questions{where}"
    )
    if not rows:
        return
    print(
        f"  {sum(1 for r in rows if r['ruled'])} abstained by the unknown-term or price rule whatever the threshold"
    )

    def rate(chosen: list[dict], threshold: float) -> float:
        return sum(r["ruled"] or r["confidence"] < threshold for r in chosen) / len(chosen)

    print(f"  {'threshold':>9s} {'abstain':>8s} {'false-ab':>8s}")
    for threshold in CALIBRATION_THRESHOLDS:
        ab = f"{rate(unanswerable, threshold):8.3f}" if unanswerable else f"{'-':>8s}"
        fa = f"{rate(answerable, threshold):8.3f}" if answerable else f"{'-':>8s}"
        mark = " <- current" if abs(threshold - current) < 1e-9 else ""
        print(f"  {threshold:9.2f} {ab} {fa}{mark}")
    if answerable:
        lowest = sorted(r["confidence"] for r in answerable if not r["ruled"])[:3]
        print(f"  lowest answerable evidence: {', '.join(f'{v:.3f}' for v in lowest) or '-'}")
    allowed = [t for t in CALIBRATION_THRESHOLDS if answerable and rate(answerable, t) <= max_false]
    if answerable and unanswerable:
        floor = rate(unanswerable, CALIBRATION_THRESHOLDS[0])  # what the rules (and the lowest) catch
        most = max((rate(unanswerable, t) for t in allowed), default=floor)
        if allowed and most == floor:
            # The threshold changes nothing for these unanswerable questions: suggesting the lowest
            # (as the rule below would) would switch the evidence check off on no evidence.
            print(
                f"  no threshold is suggested: no allowed threshold abstains on more of the unanswerable ones "
                f"than the lowest ({floor:.0%}; the rules catch {sum(r['ruled'] for r in unanswerable)} of "
                f"{len(unanswerable)}), so this set can't tell them apart. Keep ABSTAIN_THRESHOLD={current:.2f}, "
                "or add unanswerable questions in your docs' own words (ones the rules don't catch)."
            )
        elif allowed:
            best = min(t for t in allowed if rate(unanswerable, t) == most)
            print(
                f"  suggested: {best:.2f}, the lowest threshold abstaining on {most:.0%} of the unanswerable "
                f"ones with false abstentions <= {max_false:.0%} (set ABSTAIN_THRESHOLD={best:.2f}; "
                f"now {current:.2f})"
            )
        else:
            print(f"  no threshold keeps false abstentions <= {max_false:.0%}: the rules alone exceed it")
    elif answerable:
        print(
            f"  the current threshold ({current:.2f}) wrongly abstains on {rate(answerable, current):.0%} of them. "
            "No unanswerable questions, so no threshold is suggested. Add some your docs don't answer "
            '(`"kind": "unanswerable"`, no gold_sources) to see what a higher one buys.'
        )
    else:
        print(
            "  no answerable questions, so no threshold is suggested. Add some your docs answer "
            "(with their gold_sources) to see which thresholds silence none of them."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure retrieval quality on a JSONL question set.")
    parser.add_argument("questions", type=Path, help="JSONL file in the format of eval/dev.jsonl")
    parser.add_argument("--k", type=int, default=5, help="how many chunks count (default 5)")
    parser.add_argument(
        "--json", type=Path, dest="json_out", help="also write metrics and per-question rows here"
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="also show how ABSTAIN_THRESHOLD trades abstentions against false abstentions",
    )
    parser.add_argument(
        "--max-false-abstain",
        type=float,
        default=0.0,
        help="false-abstain rate the suggested threshold may reach (default 0)",
    )
    args = parser.parse_args(argv)
    from qa.embeddings import EmbeddingModelError
    from qa.retrieval import open_retriever
    from settings import get_settings

    try:
        questions = load_questions(args.questions)
    except QuestionFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        settings = get_settings()
        retriever = open_retriever(settings)
    except Exception as exc:  # noqa: BLE001 - show any store or settings problem as one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if retriever.size == 0:
        print(
            f"error: nothing is ingested in {settings.index_dir}; run `python ingest.py` first.",
            file=sys.stderr,
        )
        return 2
    try:
        report = evaluate(questions, lambda q, k: retriever.search(q, k=k), k=args.k)
    except EmbeddingModelError as exc:  # EMBEDDINGS=openai and its server failing: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report, args.k)
    if args.calibrate:
        print_calibration(
            report["questions"],
            args.max_false_abstain,
            settings.abstain_threshold,
            source=f"{settings.index_dir} ({store_label(retriever)})",
        )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
