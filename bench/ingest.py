"""Ingest speed on the real docs: our pipeline vs the seed article's, in the same run.

    python bench/ingest.py [--repo BUNDLE] [--ref docs-2026-03] [--old-ref docs-2025-08]
                           [--seed-precision same|float32|both] [--skip-seed] [--skip-incremental]

1. Full ingest of `--ref` into a fresh temp DATA_DIR with `ingest.run_ingest`, then the
   seed pipeline (bench/seed.py) into another temp dir with the same model weights (loaded
   before anything is timed): in our precision ("same", bfloat16 on AMX CPUs: the strict
   comparison) and/or in float32 as the article runs it. Prints seconds, the ratio ours /
   seed, and where the time goes: checkout, chunking, embedding, and Chroma writes with the
   index bookkeeping.
2. The incremental scenario in a third temp DATA_DIR: `--old-ref`, then `--ref` (only the
   files that differ), then `--ref` again (nothing to do), each with its summary line.

Figures are printed, never asserted: speed targets live here, not in timed tests.
Needs ../shared (the docs bundle). The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ingest  # noqa: E402
from bench.seed import BUNDLE, SeedEmbeddings, TimedEmbeddings, build_seed  # noqa: E402
from qa.embeddings import make_embeddings  # noqa: E402
from settings import get_settings  # noqa: E402


class _Timer:
    """Wraps a function and adds up the seconds spent in it."""

    def __init__(self, fn) -> None:  # noqa: ANN001
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        started = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def run_ours(
    data_dir: Path, embeddings, repo: str, ref: str
) -> tuple[ingest.IngestSummary, dict[str, float]]:  # noqa: ANN001
    """`run_ingest` with its checkout, chunking and embedding calls timed."""
    timed = TimedEmbeddings(embeddings)
    chunker, co = _Timer(ingest.chunk_markdown), _Timer(ingest.checkout)
    saved = ingest.make_embeddings, ingest.chunk_markdown, ingest.checkout
    ingest.make_embeddings, ingest.chunk_markdown, ingest.checkout = (lambda _s: timed), chunker, co
    try:
        summary = ingest.run_ingest(get_settings(data_dir=data_dir), repo=repo, ref=ref, progress=False)
    finally:
        ingest.make_embeddings, ingest.chunk_markdown, ingest.checkout = saved
    phases = {"checkout": co.seconds, "chunking": chunker.seconds, "embedding": timed.seconds}
    phases["chroma+records"] = summary.seconds - sum(phases.values())
    return summary, phases


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(BUNDLE), help="docs repo (default: ../shared bundle)")
    parser.add_argument("--ref", default="docs-2026-03")
    parser.add_argument("--old-ref", default="docs-2025-08")
    parser.add_argument("--seed-precision", choices=["same", "float32", "both"], default="both")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--skip-incremental", action="store_true")
    args = parser.parse_args(argv)
    if not Path(args.repo).exists() and "://" not in args.repo:
        print(
            f"error: {args.repo} not found; this benchmark needs ../shared (or pass --repo).", file=sys.stderr
        )
        return 2

    settings = get_settings()
    embeddings = make_embeddings(settings)
    started = time.perf_counter()
    embeddings.embed_documents(["warm up"])  # load the model once, outside both timings
    seeds = {"same": ["auto"], "float32": ["float32"], "both": ["auto", "float32"]}[args.seed_precision]
    seed_embeddings = {dtype: SeedEmbeddings(dtype) for dtype in ([] if args.skip_seed else seeds)}
    for seed_emb in seed_embeddings.values():
        seed_emb.embed_documents(["warm up"])
    print(
        f"embeddings: {getattr(embeddings, 'name', '?')} (model load {time.perf_counter() - started:.1f} s)"
    )
    print(f"load average before: {load()} on {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp = Path(tmp)
        ours, ours_phases = run_ours(tmp / "ours", embeddings, args.repo, args.ref)
        rows = [("ours", ours.chunks_added, ours.seconds, ours_phases)]
        for dtype, seed_emb in seed_embeddings.items():
            seed = build_seed(tmp / f"seed-{dtype}", seed_emb, repo=args.repo, ref=args.ref)
            phases = dict(seed.phases)
            phases["chunking"] = phases.pop("split")
            phases["embedding"] = phases.pop("embed")
            phases["chroma+records"] = phases.pop("chroma")
            label = "seed" if dtype == "auto" else "seed-f32"
            rows.append((label, seed.chunks, seed.seconds, phases))

        print(f"\nFull ingest of {args.ref} ({Path(args.repo).name}):")
        cols = ["checkout", "chunking", "embedding", "chroma+records"]
        print(f"{'pipeline':8s} {'chunks':>7s} {'seconds':>8s} " + " ".join(f"{c:>15s}" for c in cols))
        for name, chunks, seconds, phases in rows:
            cells = " ".join(f"{phases[c]:8.1f} ({phases[c] / seconds:4.0%})" for c in cols)
            print(f"{name:8s} {chunks:7d} {seconds:8.1f} {cells}")
        for name, _chunks, seconds, _phases in rows[1:]:
            precision = "float32, as the article runs it" if name == "seed-f32" else "same precision as ours"
            print(f"ours / {name} = {rows[0][2] / seconds:.2f} (goal: <= 0.50; {precision})")
        print(f"load average after: {load()}")

        if not args.skip_incremental:
            print(f"\nIncremental: {args.old_ref} -> {args.ref} -> {args.ref} again (no change)")
            data_dir = tmp / "incremental"
            for ref in (args.old_ref, args.ref, args.ref):
                summary, _ = run_ours(data_dir, embeddings, args.repo, ref)
                print(f"  {ref:13s} {summary.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
