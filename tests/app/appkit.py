"""Constants and helpers shared by the app tests and their fixtures (a uniquely named module, not conftest)."""

from __future__ import annotations

import itertools
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from pydantic import Field

WEB = "https://docs.example.test/repo"
ANSWER = "Start it with label-studio start --no-browser so no tab opens [1]."


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo, check=True, capture_output=True
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_docs_repo(repo: Path) -> Path:
    """A three-page docs git repo: starting without a browser, export units, webhooks."""
    (repo / "guide").mkdir(parents=True)
    (repo / "guide" / "start.md").write_text(
        "---\ntitle: Start Label Studio\n---\n\n## Command line arguments\n\n"
        "Use `label-studio start --no-browser` to start the server without opening a browser tab.\n"
    )
    (repo / "guide" / "export.md").write_text(
        "---\ntitle: Export annotations\n---\n\n## Units\n\nImage coordinates are exported as percentages "
        "of the original_width and original_height of the image.\n"
    )
    (repo / "guide" / "webhooks.md").write_text(
        "---\ntitle: Webhooks\n---\n\n## Events\n\nLabel Studio sends ANNOTATION_CREATED webhooks to your URL "
        "when someone submits an annotation.\n"
    )
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "docs")
    return repo


def add_page(repo: Path, path: str, text: str) -> None:
    """Commit one more page to a docs repo."""
    (repo / path).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", f"add {path}")


@contextmanager
def serve(ctx) -> Iterator[str]:  # noqa: ANN001
    """`app.create_app(ctx)` served by uvicorn in a thread; yields its URL."""
    from app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ctx),
            host="127.0.0.1",
            port=ctx.settings.port,
            log_level="warning",
            # a client's kept-alive connection or an open event stream would hold the shutdown 10 s
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    assert server.started, "the app did not start"
    try:
        yield f"http://127.0.0.1:{ctx.settings.port}"
    finally:
        server.should_exit = True
        thread.join(10)


class FakeChat(GenericFakeChatModel):
    """langchain-core's fake chat model, optionally streaming one word every `delay` seconds.

    `delays`: the delay of each answer in turn, then `delay`: a test that must click while one
    answer streams needs only that one slow (a slow answer takes 10-20 s).
    """

    delay: float = 0.0
    delays: list[float] = Field(default_factory=list)

    def _stream(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        delay = self.delays.pop(0) if self.delays else self.delay
        for chunk in super()._stream(*args, **kwargs):
            time.sleep(delay)
            yield chunk


def fake_llm(delay: float = 0.0, answer: str = ANSWER, delays: Sequence[float] = ()) -> FakeChat:
    """Always answers `answer` (ANSWER); a delay leaves time to click while it streams."""
    return FakeChat(messages=itertools.cycle([AIMessage(answer)]), delay=delay, delays=list(delays))
