"""Fixture git repos the ingest tests build themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def write(repo: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def commit(repo: Path, message: str, tag: str | None = None) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    if tag:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD").strip()


def page(title: str, body: str) -> str:
    """A one-section Markdown page: exactly one chunk."""
    return f"---\ntitle: {title}\n---\n\n{body}\n"


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


def summary(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
