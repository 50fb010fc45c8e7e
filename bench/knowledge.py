"""Reviewers' verdicts as knowledge: how much approvals and rejections move retrieval for the next user.

    python bench/knowledge.py [--reuse DATA_DIR] [--match 0.55] [--weight 0.3]

A reviewer approves an answer; later someone else asks the same thing in other words.
`bench/paraphrases.jsonl` holds such rewordings, written blind to the retriever: one for
each answerable question of `eval/dev.jsonl` and `bench/holdout2-9.jsonl` (324; a third
close rewordings, a third looser, a third a different scenario needing the same fact).

Each original question is "approved" as a reviewer would approve a right answer: when the
retriever alone puts a passage of a gold file that holds an answer fact in its top five
(and does not abstain), the answer cites up to two such passages, and those (file,
section) places are what the approval records (`qa.precedents.Judged.cited`). Each original
whose first passage is from no gold file is "rejected" as a reviewer would who ticks "wrong
passages": the answer cited the first two passages, and those from no gold file are what the
rejection records. Then:

- the rewordings are searched without verdicts, with the approvals, with the rejections, and
  with both (`REVIEWED_SOURCES_MATCH`, `REVIEWED_SOURCES_WEIGHT`, and `VOUCH_SIMILARITY`
  lifting the abstain verdict): the gain; the rewordings of rejected questions alone too;
- the eleven sets' own questions are searched with every *other* question's verdict
  around (a question's own is left out): what verdicts on other questions cost answers
  to different ones, and how many unanswerable questions an approval wrongly vouches for.

Needs ../shared (the docs bundle and the public set). Takes ~3 minutes with an ingest.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.retrieval import DEFAULT_QUESTIONS, run_questions  # noqa: E402
from bench.seed import BUNDLE  # noqa: E402
from ingest import run_ingest  # noqa: E402
from qa.embeddings import make_embeddings  # noqa: E402
from qa.evaluate import is_answerable, load_questions, summarize  # noqa: E402
from qa.precedents import (  # noqa: E402
    VOUCH_SIMILARITY,
    WRONG_SOURCES,
    Judged,
    JudgedAnswers,
    reviewed_places,
)
from qa.retrieval import HybridRetriever, open_retriever  # noqa: E402
from qa.types import RetrievalResult  # noqa: E402
from settings import get_settings  # noqa: E402

PARAPHRASES = ROOT / "bench" / "paraphrases.jsonl"
REWORDING_OF = re.compile(r"rewording of (\S+)")


def approve(retriever: HybridRetriever, questions: list[dict]) -> list[Judged]:
    """The approvals a reviewer would give: answers whose top five hold a right passage, citing it."""
    approved = []
    for q in questions:
        result = retriever.search(q["question"])
        gold, facts = set(q["gold_sources"]), [f.lower() for f in q["answer_facts"]]
        places = [
            (str(d.metadata["source"]), str(d.metadata.get("section", "")))
            for d in result.documents[:5]
            if d.metadata["source"] in gold and any(f in d.page_content.lower() for f in facts)
        ]
        if places and not result.abstain:
            approved.append(
                Judged(id=q["id"], question=q["question"], answer="", verdict="good", cited=tuple(places[:2]))
            )
    return approved


def reject(retriever: HybridRetriever, questions: list[dict]) -> list[Judged]:
    """The rejections a reviewer would give for wrong passages: answers whose first passage is from no gold file."""
    rejected = []
    for q in questions:
        result = retriever.search(q["question"])
        gold = set(q["gold_sources"])
        if result.abstain or not result.documents or result.documents[0].metadata["source"] in gold:
            continue
        places = [
            (str(d.metadata["source"]), str(d.metadata.get("section", "")))
            for d in result.documents[:2]
            if d.metadata["source"] not in gold
        ]
        rejected.append(
            Judged(
                id=q["id"],
                question=q["question"],
                answer="",
                verdict="bad",
                cited=tuple(places),
                problems=(WRONG_SOURCES,),
            )
        )
    return rejected


def lifted_search(
    retriever: HybridRetriever, judged: JudgedAnswers, weight: float, leave_out: dict[str, str]
):  # noqa: ANN201
    """Search as the answer chain does: judged places moved, a near approval vouching against abstaining."""

    def search(question: str, k: int) -> RetrievalResult:
        own = leave_out.get(question)
        related = [p for p in judged.related(question) if p.judged.id != own]
        result = retriever.search(question, k=k, prefer=reviewed_places(related, judged.related_from, weight))
        if result.abstain and any(p.vouches for p in related):
            result.abstain = False
        return result

    return search


def line(name: str, rows: list[dict]) -> str:
    m = summarize(rows, 5)
    abstain = f"{m['abstain_rate']:8.3f}" if m["unanswerable"] else f"{'-':>8s}"
    return (
        f"{name:42s} {m['hit@5']:6.3f} {m['mrr@5']:6.3f} {m['fact_recall@5']:8.3f} "
        f"{abstain} {m['false_abstain_rate']:8.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", type=Path, help="use this DATA_DIR's index instead of ingesting")
    parser.add_argument("--repo", default=str(BUNDLE))
    parser.add_argument("--ref", default="docs-2026-03")
    base = get_settings()
    parser.add_argument("--match", type=float, default=base.reviewed_sources_match)
    parser.add_argument("--weight", type=float, default=base.reviewed_sources_weight)
    args = parser.parse_args(argv)
    if not all(p.exists() for p in DEFAULT_QUESTIONS) or not Path(args.repo).exists():
        print("error: this benchmark needs ../shared (the docs bundle and the public set)", file=sys.stderr)
        return 2
    sets = {p.stem: load_questions(p) for p in DEFAULT_QUESTIONS}
    rewordings = load_questions(PARAPHRASES)
    embeddings = make_embeddings(base)
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        if args.reuse:
            settings = get_settings(data_dir=args.reuse)
        else:
            settings = get_settings(data_dir=Path(tmp))
            run_ingest(settings, repo=args.repo, ref=args.ref, progress=False)
        retriever = open_retriever(settings, embeddings).load()
        originals = [q for name, qs in sets.items() if name != "public" for q in qs if is_answerable(q)]
        approved, rejected = approve(retriever, originals), reject(retriever, originals)
        verdicts = {}
        for name, judged_ in (("approved", approved), ("rejected", rejected), ("both", approved + rejected)):
            verdicts[name] = JudgedAnswers(embeddings, related_from=args.match)
            verdicts[name].update(judged_)
        ids = {q["id"]: q["question"] for q in originals}
        original_of = {
            r["id"]: m[1] for r in rewordings if (m := REWORDING_OF.search(r["note"])) and m[1] in ids
        }
        near = [verdicts["approved"].related(r["question"]) for r in rewordings if r["id"] in original_of]
        rejected_ids = {j.id for j in rejected}
        of_rejected = [r for r in rewordings if original_of.get(r["id"]) in rejected_ids]
        plain = lambda q, k: retriever.search(q, k=k)  # noqa: E731
        own = {q["question"]: q["id"] for qs in sets.values() for q in qs}
        rows = {}
        for name in verdicts:
            rows[name], _ = run_questions(
                {"r": rewordings, "of_rejected": of_rejected},
                lifted_search(retriever, verdicts[name], args.weight, leave_out={}),
                5,
            )
        before, _ = run_questions({"r": rewordings, "of_rejected": of_rejected}, plain, 5)
        sets_before, _ = run_questions(sets, plain, 5)
        sets_approved, _ = run_questions(
            sets, lifted_search(retriever, verdicts["approved"], args.weight, leave_out=own), 5
        )
        sets_both, _ = run_questions(
            sets, lifted_search(retriever, verdicts["both"], args.weight, leave_out=own), 5
        )

    print(
        f"{len(approved)} of {len(originals)} original questions approved (a right passage in the top five), "
        f"{len(rejected)} rejected for wrong passages (the first passage from no gold file); "
        f"REVIEWED_SOURCES_MATCH {args.match}, REVIEWED_SOURCES_WEIGHT {args.weight}, VOUCH {VOUCH_SIMILARITY}\n"
        f"{len(rewordings)} rewordings ({len(of_rejected)} of rejected questions); nearest approved question "
        f"within {args.match}: {sum(bool(n) for n in near)}\n"
    )
    print(f"{'':42s} {'hit@5':>6s} {'MRR@5':>6s} {'facts@5':>8s} {'abstain':>8s} {'false-ab':>8s}")
    print(line("rewordings, no verdicts", before["r"]))
    print(line("rewordings, originals approved", rows["approved"]["r"]))
    print(line("rewordings, originals rejected", rows["rejected"]["r"]))
    print(line("rewordings, both", rows["both"]["r"]))
    print(line("rewordings of rejected, no verdicts", before["of_rejected"]))
    print(line("rewordings of rejected, rejections", rows["rejected"]["of_rejected"]))
    flat = lambda rows: [r for rs in rows.values() for r in rs]  # noqa: E731
    print(line("eleven sets, no verdicts", flat(sets_before)))
    print(line("eleven sets, others approved", flat(sets_approved)))
    print(line("eleven sets, others approved and rejected", flat(sets_both)))
    for label, after in (("approvals", sets_approved), ("approvals and rejections", sets_both)):
        moved = [
            (a["rank"] or 99, b["rank"] or 99)
            for name in sets
            for a, b in zip(sets_before[name], after[name], strict=True)
            if a["answerable"]
        ]
        print(
            f"eleven sets with the others' {label}: {sum(b < a for a, b in moved)} first right ranks up, "
            f"{sum(b > a for a, b in moved)} down, of {len(moved)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
