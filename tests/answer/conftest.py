"""Fixtures of the answer tests: settings in a temp dir, a tiny keyword retriever, a recording
fake chat model, the real local model server, and a tiny real HTTP server for error cases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from answer_testkit import DOCS, FakeOpenAIServer, KeywordRetriever, free_port
from langchain_core.documents import Document

from qa import local_llm
from settings import Settings, get_settings


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings from defaults only (no developer .env), all state under `data_dir`."""
    values: dict[str, object] = {"data_dir": data_dir, "openai_api_key": "", "openai_base_url": ""}
    values.update(overrides)
    return get_settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def docs() -> list[Document]:
    return [Document(page_content=d.page_content, metadata=dict(d.metadata)) for d in DOCS]


@pytest.fixture
def retriever(docs: list[Document]) -> KeywordRetriever:
    return KeywordRetriever(docs)


# --- the real local model ------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The embedded local model, started once for the session through `qa.local_llm`."""
    settings = make_settings(tmp_path_factory.mktemp("local-llm"), local_llm_port=free_port())
    with local_llm.running(settings, timeout=90):
        yield settings


# --- a tiny real HTTP server for the error paths ----------------------------------------------


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Build settings for a test, e.g. `settings_for(openai_base_url=url, openai_api_key="k")`."""
    return lambda **overrides: make_settings(tmp_path, **overrides)
