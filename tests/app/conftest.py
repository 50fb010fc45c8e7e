"""A real app server (FastAPI + Gradio, real Chroma and embeddings) on 127.0.0.1 for the UI tests.

Only the LLM is a stand-in (langchain-core's GenericFakeChatModel), so answers are
known in advance; the OpenAI path itself is tested in tests/answer against a real
local OpenAI-compatible server.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from appkit import ANSWER, WEB
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo, check=True, capture_output=True
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR with a three-page docs repo ingested."""
    root = tmp_path_factory.mktemp("appdocs")
    repo = root / "docs"
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
    data = root / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("DATA_DIR", str(data))
    mp.setenv("DOCS_WEB_BASE", WEB)
    from ingest import run_ingest
    from settings import get_settings

    run_ingest(get_settings(), repo=str(repo), progress=False)
    mp.undo()
    return data


class RunningApp:
    def __init__(self, url: str, ctx) -> None:  # noqa: ANN001
        self.url, self.ctx = url, ctx


@pytest.fixture(scope="module")
def running_app(app_data: Path) -> Iterator[RunningApp]:
    """`app.create_app` served by uvicorn in a thread, answering with a fake chat model."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DATA_DIR", str(app_data))
    for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        mp.delenv(key, raising=False)
    from app import build_context, create_app
    from qa.chain import AnswerChain
    from qa.retrieval import open_retriever
    from settings import get_settings

    settings = get_settings(port=free_port())
    llm = GenericFakeChatModel(messages=itertools.cycle([AIMessage(ANSWER)]))
    chain = AnswerChain(open_retriever(settings), llm=llm, settings=settings)
    ctx = build_context(settings, chain=chain)
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host="127.0.0.1", port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    assert server.started, "the app did not start"
    yield RunningApp(f"http://127.0.0.1:{settings.port}", ctx)
    server.should_exit = True
    thread.join(10)
    mp.undo()
