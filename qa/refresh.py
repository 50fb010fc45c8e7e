"""Keep the index in line with the docs repo while the app runs: `python ingest.py` on a schedule.

Docs change; an answer from last month's docs is a wrong answer. With INGEST_INTERVAL set,
the app runs the ingest command every that many seconds (and whenever a reviewer asks, from
the Review tab): it pulls the repo and embeds only what changed, and the running chain picks
up the new index by itself (`Retriever.follow_ingest`).

The ingest runs as its own process, the same command a maintainer runs: a crash or a
memory spike in it never takes the app down, the app keeps answering from the index it has
meanwhile, and `ingest_lock` keeps it from running beside a maintainer's. Its outcome (what
changed, or the error in the command's own words) is kept for the Review tab.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from qa.store import DocStore, IndexState, StoreError
from settings import Settings

log = logging.getLogger(__name__)

INGEST_SCRIPT = Path(__file__).resolve().parent.parent / "ingest.py"


@dataclass(frozen=True)
class IngestRun:
    """One run of the ingest command: when, and what it changed or why it failed."""

    started: datetime
    seconds: float
    ok: bool
    summary: dict[str, object]  # IngestSummary's fields (ok) or {}
    error: str = ""  # the command's last words on stderr (failed)

    def outcome(self) -> str:
        """A line for people: what changed, or what went wrong and that nothing was lost."""
        when = self.started.strftime("%Y-%m-%d %H:%M UTC")
        if not self.ok:
            return f"Last update ({when}) failed: {self.error} The docs ingested before still answer."
        added, changed, deleted = (self.count(f"files_{k}") for k in ("added", "changed", "deleted"))
        commit = str(self.summary.get("commit", ""))[:12]
        if not added + changed + deleted:
            return f"Last update ({when}): no change, at commit {commit}."
        return (
            f"Last update ({when}): {added} file(s) added, {changed} changed, {deleted} deleted, "
            f"now at commit {commit} ({self.seconds:.0f} s)."
        )

    def count(self, key: str) -> int:
        value = self.summary.get(key, 0)
        return value if isinstance(value, int) else 0


class DocsRefresher:
    """Runs the ingest command every `settings.ingest_interval` seconds (0: only when asked)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval = max(0.0, float(settings.ingest_interval))
        self.last: IngestRun | None = None
        self.next_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    # --- the schedule ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the schedule (with INGEST_INTERVAL 0 it only runs when asked, in its caller)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self.next_at = time.time() + self.interval
        self._thread = threading.Thread(target=self._loop, name="docs-refresh", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the schedule; a run in progress is ended (the ingest leaves the store consistent)."""
        self._stop.set()
        self._wake.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # as Ctrl-C: the ingest stops between batches
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = (self.next_at or 0) - time.time()
            if wait > 0:  # looked at again after each wake: a run asked for resets the schedule
                self._wake.wait(wait)
                self._wake.clear()
                continue
            self.run()

    # --- one run --------------------------------------------------------------------------
    def run(self) -> IngestRun | None:
        """Run the ingest command now and keep its outcome. None if a run is already going."""
        if not self._running.acquire(blocking=False):
            return None
        try:
            run = self._ingest()
        finally:
            self.next_at = time.time() + self.interval if self.interval > 0 else None
            self._running.release()
        if not run.ok and self._stop.is_set():  # the app is stopping: not a failure of the docs
            run = replace(run, error="it was stopped with the app; the next run finishes it.")
            log.info("docs update stopped with the app")
        elif run.ok:
            log.info("docs updated: %s", run.outcome())
        else:
            log.warning("docs update failed: %s", run.error)
        self.last = run
        return run

    @property
    def running(self) -> bool:
        return self._running.locked()

    def source(self) -> tuple[str, str, list[str]]:
        """(repo, ref, globs) to update: those of the docs ingested, else DOCS_REPO / DOCS_REF / DOCS_GLOB.

        The docs a maintainer ingested with `--repo ../handbook` are updated, not replaced by
        the settings' default repo.
        """
        settings = self.settings
        try:
            state = DocStore(settings.index_dir).read_state()
        except StoreError:
            state = IndexState()
        if state.repo:
            return state.repo, state.ref, state.globs or settings.docs_glob
        return settings.docs_repo, settings.docs_ref, settings.docs_glob

    def _ingest(self) -> IngestRun:
        started = datetime.now(UTC)
        began = time.perf_counter()
        repo, ref, globs = self.source()
        args = ["--repo", repo, "--ref", ref, *(arg for glob in globs for arg in ("--glob", glob))]
        env = {**os.environ, "DATA_DIR": str(self.settings.data_dir)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(INGEST_SCRIPT), *args, "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,  # and the app's working directory, so the same `.env` is read
            )
            out, err = self._process.communicate()
            code = self._process.returncode
        except OSError as exc:
            return IngestRun(
                started, time.perf_counter() - began, False, {}, f"could not start the ingest: {exc}."
            )
        finally:
            self._process = None
        seconds = time.perf_counter() - began
        if code == 0:
            try:
                return IngestRun(started, seconds, True, json.loads(out.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                return IngestRun(
                    started, seconds, False, {}, f"the ingest printed no summary: {out[-300:]!r}."
                )
        return IngestRun(started, seconds, False, {}, _last_words(err, code))

    # --- for people ---------------------------------------------------------------------------
    def outcome(self) -> str:
        """The last run's outcome, or the docs' state if an ingest by hand changed them since ("": none).

        A maintainer's `python ingest.py` after this app's last run would otherwise leave
        "Last update …: no change, at commit A" beside a header at commit B.
        """
        if self.last is None:
            return ""
        try:
            state = DocStore(self.settings.index_dir).read_state()
        except StoreError:
            return self.last.outcome()
        updated = datetime.fromisoformat(state.updated_at) if state.updated_at else None
        if updated is not None and updated.timestamp() > self.last.started.timestamp() + self.last.seconds:
            when = updated.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            return f"Last update ({when}) by `python ingest.py`: now at commit {state.commit[:12]}."
        return self.last.outcome()

    def status(self) -> str:
        """What the Review tab says: the schedule, the last outcome, the next run."""
        if self.interval > 0:
            parts = [
                f"The docs repo is checked for changes every {_duration(self.interval)} (INGEST_INTERVAL)."
            ]
        else:
            parts = [
                "The docs are updated by `python ingest.py`, or here; set INGEST_INTERVAL to do it on a schedule."
            ]
        if self.running:
            parts.append("Updating them now…")
        if outcome := self.outcome():
            parts.append(outcome)
        if self.next_at is not None and not self.running:
            parts.append(f"Next check: {datetime.fromtimestamp(self.next_at, UTC).strftime('%H:%M UTC')}.")
        return " ".join(parts)


def _last_words(stderr: str, code: int) -> str:
    """The ingest command's error line(s), as it printed them for a maintainer."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if said:
        return " ".join(said)
    if code < 0:
        return f"the ingest was stopped (signal {-code})."
    tail = " ".join(lines[-2:]) if lines else "no message"
    return f"the ingest exited with code {code}: {tail[-400:]}"


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
