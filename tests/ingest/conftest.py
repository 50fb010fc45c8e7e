"""Fixtures for the ingest tests: git repos they build themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gitrepo import ROOT, commit, git, page, write


@pytest.fixture
def docs_repo(tmp_path: Path) -> Path:
    """v1: a, b, c, guide/d. v2: a modified, b renamed to b2, c deleted, e added, d unchanged."""
    repo = tmp_path / "docs"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(
        repo,
        {
            "a.md": page("Alpha", "Alpha explains how to start the server with the --no-browser flag."),
            "b.md": page("Beta", "Beta describes exporting annotations as JSON with percentages."),
            "c.md": page("Gamma", "Gamma covers the LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK variable."),
            "guide/d.md": page("Delta", "Delta is about webhooks and their payloads sent on events."),
            "notes.txt": "not markdown, never ingested",
        },
    )
    commit(repo, "v1", tag="v1")
    write(repo, {"a.md": page("Alpha", "Alpha now explains starting with a custom port via -p.")})
    git(repo, "mv", "b.md", "b2.md")
    git(repo, "rm", "-q", "c.md")
    write(repo, {"e.md": page("Epsilon", "Epsilon documents the SUPPORT_REPORT_DELIVERY_URL setting.")})
    commit(repo, "v2", tag="v2")
    return repo


@pytest.fixture
def run_ingest_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python ingest.py ARGS --json` the way a maintainer would."""

    def run(
        *args: str, env: dict[str, str] | None = None, json_out: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, str(ROOT / "ingest.py"), *args] + (["--json"] if json_out else [])
        return subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600
        )

    return run
