"""Helpers for the feedback tests: the real Label Studio server, a real uvicorn, polling.

The server is started with the project's own script (`scripts/labelstudio.sh start`,
which installs it into .venv-labelstudio first if needed) on a free port with its
data in a temp DATA_DIR, and stopped at the end. Each test gets its own project
(a unique LABEL_STUDIO_PROJECT) and its own DATA_DIR, so tests do not see each other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from label_studio_sdk import LabelStudio  # noqa: E402

from feedback import FeedbackLog  # noqa: E402
from feedback.review_task import USER_MODEL_VERSION  # noqa: E402

SCRIPT = ROOT / "scripts" / "labelstudio.sh"
# Variables of a developer's shell that must not leak into a hermetic run.
LEAKY = (
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "LABEL_STUDIO_PROJECT",
    "LABEL_STUDIO_USERNAME",
    "LABEL_STUDIO_PASSWORD",
    "LABEL_STUDIO_USER_TOKEN",
    "LABEL_STUDIO_PORT",
    "WEBHOOK_SECRET",
    "PUBLIC_URL",
    "DATA_DIR",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1) -> object:
    """Poll until `predicate()` is truthy; fail with what it last returned."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


@dataclass
class LabelStudioServer:
    """The session's Label Studio, driven through scripts/labelstudio.sh like a person would."""

    data_dir: Path
    port: int
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in LEAKY}
        env.update(DATA_DIR=str(self.data_dir), LABEL_STUDIO_PORT=str(self.port))
        # cwd = the temp dir: the script reads ./.env, and the developer's must not leak in.
        return subprocess.run(
            ["bash", str(SCRIPT), command],
            env=env,
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> None:
        result = self.script("start")
        assert result.returncode == 0, f"labelstudio.sh start failed:\n{result.stdout}\n{result.stderr}"

    def stop(self) -> None:
        result = self.script("stop")
        assert result.returncode == 0, f"labelstudio.sh stop failed:\n{result.stdout}\n{result.stderr}"

    def client(self, api_key: str | None = None) -> LabelStudio:
        return LabelStudio(base_url=self.url, api_key=api_key or self.token, timeout=30, max_retries=0)

    def project_id(self, title: str) -> int:
        matches = [p.id for p in self.client().projects.list(title=title) if p.title == title]
        assert len(matches) == 1, f"expected one project titled {title!r}, found {matches}"
        return int(matches[0])

    def tasks(self, title: str) -> list:
        return list(self.client().tasks.list(project=self.project_id(title), page_size=100))


def field(obj: object, name: str) -> object:
    """A field of what the SDK returns: a model, or a plain dict in some listings."""
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def user_predictions(task: object) -> list:
    """The task's predictions that carry the user's thumb."""
    return [p for p in field(task, "predictions") if field(p, "model_version") == USER_MODEL_VERSION]


def answer(log: FeedbackLog, n: int = 0, **overrides: object) -> str:
    """Log a typical answer as the chat would (the LLM is not involved in feedback)."""
    fields: dict[str, object] = dict(
        question=f"How do I start Label Studio on another port? ({n})",
        standalone_question=f"How to start Label Studio on a different port ({n})",
        answer="Run `label-studio start -p 9000` [1].",
        session="session-1",
        retrieved=[
            {
                "source": "docs/start.md",
                "section": "Start > Ports",
                "score": 0.91,
                "url": "https://x/start#ports",
            },
            {"source": "docs/install.md", "section": "Install", "score": 0.42, "url": ""},
        ],
        cited=[
            {
                "source": "docs/start.md",
                "section": "Start > Ports",
                "score": 0.91,
                "url": "https://x/start#ports",
                "quote": "Use `label-studio start -p 9000` to serve it on another port.",
            }
        ],
        prompt_version="v1",
        model="fake-model",
        docs_commit="abc123",
        latency_ms=850,
    )
    fields.update(overrides)
    return log.record_exchange(**fields)  # type: ignore[arg-type]


class UvicornThread:
    """A FastAPI app served for real on 127.0.0.1 in a background thread."""

    def __init__(self, app: object, port: int) -> None:
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=15)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
