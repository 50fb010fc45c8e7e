"""Shared test set-up: every test's state lives in a temp dir, never in ./data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point DATA_DIR at a fresh temp dir and keep a developer's .env / keys out of the tests."""
    if "DATA_DIR" not in os.environ or not os.environ["DATA_DIR"].startswith(
        str(tmp_path_factory.getbasetemp())
    ):
        monkeypatch.setenv("DATA_DIR", str(tmp_path_factory.mktemp("data")))
    for key in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "EMBEDDINGS",
        "DOCS_REPO",
        "DOCS_REF",
        "DOCS_GLOB",
        "DOCS_WEB_BASE",
    ):
        monkeypatch.delenv(key, raising=False)
