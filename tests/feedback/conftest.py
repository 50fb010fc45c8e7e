"""Fixtures for the feedback tests: one real Label Studio per test session, state in temp dirs.

The server is started with the project's own script (`scripts/labelstudio.sh start`,
which installs it into .venv-labelstudio first if needed) on a free port with its
data in a temp DATA_DIR, and stopped at the end. Each test gets its own project
(a unique LABEL_STUDIO_PROJECT) and its own DATA_DIR, so tests do not see each other.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedback_testkit import LEAKY, ROOT, LabelStudioServer, free_port

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from feedback import FeedbackLog, SyncWorker
from settings import Settings, get_settings


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    server = LabelStudioServer(data_dir=tmp_path_factory.mktemp("labelstudio-data"), port=free_port())
    server.start()
    token = server.script("token")
    assert token.returncode == 0, token.stderr
    server.token = token.stdout.strip()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with all state in a temp DATA_DIR and no Label Studio."""
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return get_settings()


@pytest.fixture
def ls_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label_studio: LabelStudioServer) -> Settings:
    """Settings pointing at the session's Label Studio, with a project of this test's own."""
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    monkeypatch.setenv("LABEL_STUDIO_PROJECT", f"Docs QA feedback test {uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("LABEL_STUDIO_TIMEOUT", "5")
    # Nothing listens there unless a test serves the webhook itself.
    monkeypatch.setenv("PUBLIC_URL", f"http://127.0.0.1:{free_port()}")
    return get_settings()


@pytest.fixture
def feedback_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedbackLog]:
    settings = get_settings(data_dir=tmp_path / "data")
    with FeedbackLog(settings.feedback_db) as log:
        yield log


@pytest.fixture
def make_worker() -> Iterator[Callable[..., SyncWorker]]:
    """SyncWorkers with test-sized intervals, stopped at the end of the test."""
    workers: list[SyncWorker] = []

    def make(log: FeedbackLog, settings: Settings, **kwargs: object) -> SyncWorker:
        options: dict[str, object] = dict(interval=0.5, pull_interval=1.0, backoff_base=0.2, backoff_cap=1.0)
        options.update(kwargs)
        worker = SyncWorker(log, settings, **options)  # type: ignore[arg-type]
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
