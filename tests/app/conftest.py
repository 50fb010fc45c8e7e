"""A real app server (FastAPI + Gradio, real Chroma and embeddings) on 127.0.0.1 for the UI tests.

Only the LLM is a stand-in (langchain-core's GenericFakeChatModel), so answers are
known in advance; the OpenAI path itself is tested in tests/answer against a real
local OpenAI-compatible server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from appkit import WEB, fake_llm, free_port, make_docs_repo, serve


@pytest.fixture(scope="module")
def app_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR with a three-page docs repo ingested."""
    root = tmp_path_factory.mktemp("appdocs")
    repo = make_docs_repo(root / "docs")
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
    from app import build_context
    from settings import get_settings

    ctx = build_context(get_settings(port=free_port()), llm=fake_llm())
    with serve(ctx) as url:
        yield RunningApp(url, ctx)
    mp.undo()
