"""Benchmark the feedback path: click → durable write, and Label Studio sync throughput.

    .venv/bin/python bench/feedback.py                    # starts its own Label Studio in a temp dir
    .venv/bin/python bench/feedback.py --ratings 1000 --tasks 500
    .venv/bin/python bench/feedback.py --url http://127.0.0.1:8080 --api-key TOKEN   # an existing one

Prints p50/p95/max of `FeedbackLog.rate()` (what a thumbs click costs the chat: one
committed SQLite transaction, synchronous=FULL), alone and while the sync worker is
sending to Label Studio, and how many tasks per second the worker creates (bulk
import) and updates (changed ratings), and how many Review-tab verdicts it writes
into annotations per second. Goal: click p95 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback import FeedbackLog, SyncWorker  # noqa: E402
from settings import Settings, get_settings  # noqa: E402

GOAL_P95_MS = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def log_answers(log: FeedbackLog, n: int) -> list[str]:
    chunk = {
        "source": "docs/guide/start.md",
        "section": "Start > Ports",
        "score": 0.87,
        "url": "https://x/y#z",
    }
    return [
        log.record_exchange(
            question=f"How do I change the port? #{i}",
            standalone_question=f"How to change the Label Studio port #{i}",
            answer="Use `label-studio start -p 9000` [1]. " * 8,
            session=f"s{i % 20}",
            retrieved=[chunk] * 5,
            cited=[chunk],
            prompt_version="v1",
            model="bench-model",
            docs_commit="0" * 40,
            latency_ms=900,
        )
        for i in range(n)
    ]


def time_clicks(log: FeedbackLog, ids: list[str]) -> list[float]:
    timings = []
    for i, exchange_id in enumerate(ids):
        started = time.perf_counter()
        log.rate(exchange_id, "good" if i % 3 else "bad", comment="bench" if i % 4 == 0 else None)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def report_clicks(label: str, timings: list[float]) -> None:
    p95 = percentile(timings, 0.95)
    verdict = "OK" if p95 <= GOAL_P95_MS else "OVER GOAL"
    print(
        f"click → durable write ({label}, n={len(timings)}): p50 {statistics.median(timings):.2f} ms, "
        f"p95 {p95:.2f} ms, max {max(timings):.2f} ms  [goal p95 ≤ {GOAL_P95_MS:g} ms: {verdict}]"
    )


def start_label_studio(data_dir: Path, port: int) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(DATA_DIR=str(data_dir), LABEL_STUDIO_PORT=str(port))
    script = ["bash", str(ROOT / "scripts" / "labelstudio.sh")]
    subprocess.run([*script, "start"], env=env, cwd=data_dir, check=True, capture_output=True, text=True)
    token = subprocess.run(
        [*script, "token"], env=env, cwd=data_dir, check=True, capture_output=True, text=True
    )
    return token.stdout.strip()


def stop_label_studio(data_dir: Path, port: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(DATA_DIR=str(data_dir), LABEL_STUDIO_PORT=str(port))
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "labelstudio.sh"), "stop"], env=env, cwd=data_dir, check=False
    )


def timed_flush(worker: SyncWorker):  # noqa: ANN201 - (SyncReport, seconds)
    """Deliver everything pending (no pull) and time it; a failed delivery stops the benchmark."""
    started = time.perf_counter()
    report = worker.flush(timeout=600, pull=False)
    elapsed = time.perf_counter() - started
    assert report.ok, report.error
    return report, elapsed


def bench(args: argparse.Namespace, work: Path, url: str, api_key: str) -> None:
    settings: Settings = get_settings(
        data_dir=work / "app",
        label_studio_url=url,
        label_studio_api_key=api_key,
        label_studio_project=f"Feedback bench {uuid.uuid4().hex[:6]}",
        public_url=f"http://127.0.0.1:{free_port()}",  # no webhook listener needed here
    )
    with FeedbackLog(settings.feedback_db) as log:
        # 1. Clicks with nothing else going on.
        report_clicks("idle", time_clicks(log, log_answers(log, args.ratings)))

        # 2. Sync throughput: create tasks in bulk, then push changed ratings to them.
        worker = SyncWorker(log, settings, register_webhook=False)
        worker.flush(timeout=600, pull=False)  # project + the ratings above
        ids = log_answers(log, args.tasks)
        for exchange_id in ids:
            log.rate(exchange_id, "good")
        report, elapsed = timed_flush(worker)
        print(f"sync: {report.created} new tasks in {elapsed:.2f} s = {report.created / elapsed:.0f} tasks/s")
        for exchange_id in ids:
            log.rate(exchange_id, "bad")
        report, elapsed = timed_flush(worker)
        print(
            f"sync: {report.updated} changed ratings in {elapsed:.2f} s "
            f"= {report.updated / elapsed:.1f} updates/s"
        )
        for n, exchange_id in enumerate(ids):  # a reviewer's verdicts in the Review tab
            log.review(exchange_id, "good" if n % 2 else "bad", "checked", reviewer="bench")
        report, elapsed = timed_flush(worker)
        print(
            f"sync: {report.reviews} Review-tab verdicts in {elapsed:.2f} s "
            f"= {report.reviews / elapsed:.1f} annotations/s"
        )
        started = time.perf_counter()
        report = worker.sync_once(pull=True)
        print(
            f"pull: scan of {args.tasks + args.ratings} tasks in {time.perf_counter() - started:.2f} s "
            f"({report.pulled} verdict changes: the app's own annotations are not read as new ones)"
        )

        # 3. Clicks while the background worker sends them to Label Studio.
        worker = SyncWorker(log, settings, register_webhook=False, interval=0.2)
        worker.start()
        try:
            report_clicks("worker syncing", time_clicks(log, log_answers(log, args.ratings)))
            deadline = time.monotonic() + 300
            while log.pending_count() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            worker.stop()
        print(f"pending after the run: {log.pending_count()}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ratings", type=int, default=500, help="clicks to time per phase (default 500)")
    parser.add_argument("--tasks", type=int, default=300, help="tasks for the sync throughput (default 300)")
    parser.add_argument("--url", help="an existing Label Studio (default: start one in a temp dir)")
    parser.add_argument("--api-key", default="", help="its API key (with --url)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        work = Path(tmp)
        if args.url:
            bench(args, work, args.url, args.api_key)
            return 0
        port = free_port()
        ls_dir = work / "ls"
        ls_dir.mkdir()
        started = time.perf_counter()
        token = start_label_studio(ls_dir, port)
        print(f"Label Studio started for the bench in {time.perf_counter() - started:.1f} s (port {port})")
        try:
            bench(args, work, f"http://127.0.0.1:{port}", token)
        finally:
            stop_label_studio(ls_dir, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
