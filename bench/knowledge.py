"""Approved answers as knowledge: how much reviewers' approvals lift retrieval for the next user.

    python bench/knowledge.py [--reuse DATA_DIR] [--match 0.55] [--weight 0.3]

A reviewer approves an answer; later someone else asks the same thing in other words.
`bench/paraphrases.jsonl` holds such rewordings, written blind to the retriever: one for
each answerable question of `eval/dev.jsonl` and `bench/holdout2-9.jsonl` (324; a third
close rewordings, a third looser, a third a different scenario needing the same fact).

Each original question is "approved" as a reviewer would approve a right answer: when the
retriever alone puts a passage of a gold file that holds an answer fact in its top five
(and does not abstain), the answer cites up to two such passages, and those (file,
section) places are what the approval records (`qa.precedents.Judged.cited`). Then:

- the rewordings are searched without approvals and with them (`REVIEWED_SOURCES_MATCH`,
  `REVIEWED_SOURCES_WEIGHT`, and `VOUCH_SIMILARITY` lifting the abstain verdict): the gain;
- the eleven sets' own questions are searched with every *other* question's approval
  around (a question's own is left out): what approvals of other questions cost answers
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
from qa.precedents import VOUCH_SIMILARITY, Judged, JudgedAnswers, approved_places  # noqa: E402
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


def lifted_search(
    retriever: HybridRetriever, judged: JudgedAnswers, weight: float, leave_out: dict[str, str]
):  # noqa: ANN201
    """Search as the answer chain does: approved places lifted, a near approval vouching against abstaining."""

    def search(question: str, k: int) -> RetrievalResult:
        own = leave_out.get(question)
        related = [p for p in judged.related(question) if p.judged.id != own]
        result = retriever.search(question, k=k, prefer=approved_places(related, judged.related_from, weight))
        if result.abstain and any(p.vouches for p in related):
            result.abstain = False
        return result

    return search


def line(name: str, rows: list[dict]) -> str:
    m = summarize(rows, 5)
    abstain = f"{m['abstain_rate']:8.3f}" if m["unanswerable"] else f"{'-':>8s}"
    return (
        f"{name:34s} {m['hit@5']:6.3f} {m['mrr@5']:6.3f} {m['fact_recall@5']:8.3f} "
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
        approved = approve(retriever, originals)
        judged = JudgedAnswers(embeddings, related_from=args.match)
        judged.update(approved)
        ids = {q["id"]: q["question"] for q in originals}
        near = [
            judged.related(r["question"])
            for r in rewordings
            if REWORDING_OF.search(r["note"]) and REWORDING_OF.search(r["note"])[1] in ids
        ]
        plain = lambda q, k: retriever.search(q, k=k)  # noqa: E731
        lifted = lifted_search(retriever, judged, args.weight, leave_out={})
        own = {q["question"]: q["id"] for qs in sets.values() for q in qs}
        others = lifted_search(retriever, judged, args.weight, leave_out=own)
        before, _ = run_questions({"r": rewordings}, plain, 5)
        after, _ = run_questions({"r": rewordings}, lifted, 5)
        sets_before, _ = run_questions(sets, plain, 5)
        sets_after, _ = run_questions(sets, others, 5)

    print(
        f"{len(approved)} of {len(originals)} original questions approved (a right passage in the top five); "
        f"REVIEWED_SOURCES_MATCH {args.match}, REVIEWED_SOURCES_WEIGHT {args.weight}, VOUCH {VOUCH_SIMILARITY}\n"
        f"{len(rewordings)} rewordings; nearest approved question within {args.match}: "
        f"{sum(bool(n) for n in near)}\n"
    )
    print(f"{'':34s} {'hit@5':>6s} {'MRR@5':>6s} {'facts@5':>8s} {'abstain':>8s} {'false-ab':>8s}")
    print(line("rewordings, no approvals", before["r"]))
    print(line("rewordings, originals approved", after["r"]))
    flat = lambda rows: [r for rs in rows.values() for r in rs]  # noqa: E731
    print(line("eleven sets, no approvals", flat(sets_before)))
    print(line("eleven sets, others approved", flat(sets_after)))
    moved = [
        (a["rank"] or 99, b["rank"] or 99)
        for name in sets
        for a, b in zip(sets_before[name], sets_after[name], strict=True)
        if a["answerable"]
    ]
    print(
        f"\neleven sets with the others' approvals: {sum(b < a for a, b in moved)} first right ranks up, "
        f"{sum(b > a for a, b in moved)} down, of {len(moved)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
