"""Retrieval quality and speed: the seed article's pipeline and ours, side by side in one run.

    python bench/retrieval.py [--questions FILE ...] [--k 5] [--reuse-ours DATA_DIR] [--skip-seed]
                              [--calibrate] [--max-false-abstain 0.0]

Both pipelines ingest the same corpus (docs-2026-03 of ../shared's bundle) into fresh temp
dirs with the same model weights in the same precision (the seed calls them as the article
does, bench/seed.py), then answer the same questions (default: the public
set, eval/dev.jsonl and the nine held-out sets bench/holdout*.jsonl). For each question file and for all of them together it prints one
row per pipeline: hit@k, MRR@k, fact recall@k, abstain rate (unanswerable questions),
false-abstain rate (answerable ones), ingest seconds, retrieval p50/p95 ms (query embedding
included, first query excluded as warm-up). The metrics are qa.evaluate's. Then how often it
abstains on bench/short_questions.txt, 79 questions of two to eight words.

`--reuse-ours DIR` skips our ingest and uses DIR's index (ingest seconds then show "-"), whatever
docs it holds: the header then names that store, not the bundle. `--calibrate` also prints, over
the given questions, how the abstain threshold (our evidence score) trades abstentions against
false abstentions (qa.evaluate's `print_calibration`). To calibrate on your own docs and
questions, use `python -m qa.evaluate mine.jsonl --calibrate`: it measures the store the app
answers from, and ingests nothing.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import BUNDLE, SeedEmbeddings, build_seed, seed_search  # noqa: E402
from ingest import run_ingest  # noqa: E402
from qa.embeddings import make_embeddings  # noqa: E402
from qa.evaluate import (  # noqa: E402
    is_answerable,
    load_questions,
    print_calibration,
    score_question,
    store_label,
    summarize,
)
from qa.retrieval import open_retriever  # noqa: E402
from qa.types import RetrievalResult  # noqa: E402
from settings import get_settings  # noqa: E402

SHORT_QUESTIONS = ROOT / "bench" / "short_questions.txt"
DEFAULT_QUESTIONS = [
    ROOT.parent / "shared" / "eval" / "public.jsonl",
    ROOT / "eval" / "dev.jsonl",
    ROOT / "bench" / "holdout.jsonl",
    ROOT / "bench" / "holdout2.jsonl",
    ROOT / "bench" / "holdout3.jsonl",
    ROOT / "bench" / "holdout4.jsonl",
    ROOT / "bench" / "holdout5.jsonl",
    ROOT / "bench" / "holdout6.jsonl",
    ROOT / "bench" / "holdout7.jsonl",
    ROOT / "bench" / "holdout8.jsonl",
    ROOT / "bench" / "holdout9.jsonl",
]


def run_questions(
    questions: dict[str, list[dict]],
    search: Callable[[str, int], RetrievalResult],
    k: int,
) -> tuple[dict[str, list[dict]], list[float]]:
    """Score every question of every file; also the per-query latencies in ms."""
    search("warm up the model and caches", k)
    rows: dict[str, list[dict]] = {}
    latencies: list[float] = []
    for name, qs in questions.items():
        rows[name] = []
        for q in qs:
            result = search(q["question"], k)
            latencies.append(result.seconds * 1000)
            rows[name].append(score_question(q, result, k))
    return rows, latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def print_table(results: dict[str, tuple[dict[str, list[dict]], list[float], float | None]], k: int) -> None:
    names = list(next(iter(results.values()))[0])
    header = (
        f"{'questions':12s} {'pipeline':8s} {'hit@' + str(k):>6s} {'MRR@' + str(k):>6s} {'facts@' + str(k):>8s} "
        f"{'abstain':>8s} {'false-ab':>8s} {'ingest s':>9s} {'p50 ms':>7s} {'p95 ms':>7s}"
    )
    print(header)
    print("-" * len(header))
    for qname in [*names, "all"] if len(names) > 1 else names:
        for pipeline, (rows, latencies, ingest_s) in results.items():
            chosen = [r for rs in rows.values() for r in rs] if qname == "all" else rows[qname]
            m = summarize(chosen, k)
            ingest_cell = f"{ingest_s:9.1f}" if ingest_s is not None else f"{'-':>9s}"
            print(
                f"{qname:12s} {pipeline:8s} {m[f'hit@{k}']:6.3f} {m[f'mrr@{k}']:6.3f} {m[f'fact_recall@{k}']:8.3f} "
                f"{m['abstain_rate']:8.3f} {m['false_abstain_rate']:8.3f} {ingest_cell} "
                f"{percentile(latencies, 50):7.1f} {percentile(latencies, 95):7.1f}"
            )
        print(f"{'':12s} ({m['answerable']} answerable, {m['unanswerable']} unanswerable)")


def corpus_line(args: argparse.Namespace, retriever) -> str:  # noqa: ANN001
    """What each pipeline answered from: the same corpus, unless ours is a store given with --reuse-ours."""
    corpus = f"{args.ref} of {args.repo}"
    if not args.reuse_ours:
        return f"Same corpus ({corpus})" if not args.skip_seed else f"Corpus {corpus}"
    ours = f"ours: the store in {args.reuse_ours} ({store_label(retriever)})"
    return ours if args.skip_seed else f"seed: {corpus}; {ours}"


def short_questions(retriever) -> str:  # noqa: ANN001
    """Abstentions on SHORT_QUESTIONS ("A question" answerable, "U question" not), one line per miss.

    The question sets ask 15 words on average; newcomers also ask "What is the Video tag?".
    The seed never abstains, so only our row is printed.
    """
    lines = [ln for ln in SHORT_QUESTIONS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    counts = {"A": [0, 0], "U": [0, 0]}
    misses = []
    for line in lines:
        label, question = line.split(" ", 1)
        result = retriever.search(question)
        counts[label][0] += result.abstain
        counts[label][1] += 1
        if result.abstain == (label == "A"):
            misses.append(
                f"  {'abstained' if result.abstain else 'answered'} ({result.confidence:.2f}): {question}"
            )
    (a_ab, a_n), (u_ab, u_n) = counts["A"], counts["U"]
    return "\n".join(
        [
            f"short questions ({SHORT_QUESTIONS.name}): answered {a_n - a_ab} of {a_n} answerable, "
            f"abstained on {u_ab} of {u_n} off-topic",
            *misses,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, nargs="+", default=DEFAULT_QUESTIONS)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repo", default=str(BUNDLE))
    parser.add_argument("--ref", default="docs-2026-03")
    parser.add_argument("--reuse-ours", type=Path, help="use this DATA_DIR's index instead of ingesting")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--max-false-abstain", type=float, default=0.0)
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.questions if not p.exists()]
    if missing or (not Path(args.repo).exists() and "://" not in args.repo):
        print(
            f"error: not found: {', '.join(missing) or args.repo} (this benchmark needs ../shared)",
            file=sys.stderr,
        )
        return 2
    questions = {p.stem: load_questions(p) for p in args.questions}

    base = get_settings()
    embeddings = make_embeddings(base)
    embeddings.embed_documents(["warm up"])  # model load outside every timing
    print(
        f"embeddings: {getattr(embeddings, 'name', '?')}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        tmp = Path(tmp)
        if not args.skip_seed:
            seed = build_seed(tmp / "seed", SeedEmbeddings(), repo=args.repo, ref=args.ref)
            rows, lat = run_questions(questions, lambda q, k: seed_search(seed.vectorstore, q, k), args.k)
            results["seed"] = (rows, lat, seed.seconds)
        if args.reuse_ours:
            settings, ingest_s = get_settings(data_dir=args.reuse_ours), None
        else:
            settings = get_settings(data_dir=tmp / "ours")
            started = time.perf_counter()
            run_ingest(settings, repo=args.repo, ref=args.ref, progress=False)
            ingest_s = time.perf_counter() - started
        retriever = open_retriever(settings, embeddings)
        rows, lat = run_questions(questions, lambda q, k: retriever.search(q, k=k), args.k)
        results["ours"] = (rows, lat, ingest_s)
        short = short_questions(retriever) if SHORT_QUESTIONS.exists() else ""

    print(f"\n{corpus_line(args, retriever)}, same questions, k={args.k}:\n")
    print_table(results, args.k)
    if args.calibrate:
        every = [r for rs in results["ours"][0].values() for r in rs]
        print_calibration(every, args.max_false_abstain, settings.abstain_threshold)
    if short:
        print(f"\n{short}")
    answerable = sum(is_answerable(q) for qs in questions.values() for q in qs)
    print(f"\n{answerable} answerable questions; mean ms ours {statistics.fmean(results['ours'][1]):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
