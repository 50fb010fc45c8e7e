"""The shell scripts behind `make run`: they must read settings as the app does, and not reinstall needlessly.

`scripts/run.sh --settings` prints what `make run` would use (`--shell-settings` as the assignments
it acts on), `scripts/labelstudio.sh url` what Label Studio would listen on, and bootstrap runs in a
fresh venv. One test runs `make run`'s script itself, with a docs repo it can't reach.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gitrepo import ROOT

from settings import get_settings

DOTENV = """# what a person's .env looks like after a while
export DATA_DIR="{data}"   # quoted, with a comment
LABEL_STUDIO_PORT=8080
LABEL_STUDIO_PORT=8095   # my port: the last line wins, the comment is no part of it
LABEL_STUDIO_URL='http://127.0.0.1:8095'
LABEL_STUDIO_API_KEY=abc#def
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the tests' DATA_DIR and any Label Studio setting: .env decides."""
    env = {k: v for k, v in os.environ.items() if k != "DATA_DIR" and not k.startswith("LABEL_STUDIO_")}
    return env | extra


def run_sh_settings(project: Path, env: dict[str, str]) -> dict[str, str]:
    """`scripts/run.sh --shell-settings` of a project dir holding run.sh, settings.py, the venv and a .env."""
    proc = subprocess.run(
        ["bash", "scripts/run.sh", "--shell-settings"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return {
        k: shlex.split(v)[0] if v else ""
        for k, v in (line.split("=", 1) for line in proc.stdout.splitlines())
    }


def project_with_dotenv(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run.sh", project / "scripts" / "run.sh")
    (project / "settings.py").symlink_to(ROOT / "settings.py")
    (project / "qa").symlink_to(ROOT / "qa")
    (project / ".venv").symlink_to(ROOT / ".venv")
    data = tmp_path / "my data"
    (project / ".env").write_text(DOTENV.format(data=data))
    return project, data


def test_run_sh_reads_env_and_dotenv_as_the_app_does(tmp_path: Path, monkeypatch) -> None:
    project, data = project_with_dotenv(tmp_path)

    values = run_sh_settings(project, clean_env())

    assert values == {
        "data_dir": str(data),
        "ls_port": "8095",
        "ls_url": "http://127.0.0.1:8095",
        "ls_api_key": "abc#def",
    }
    for key in [k for k in os.environ if k == "DATA_DIR" or k.startswith("LABEL_STUDIO_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(project)
    app = get_settings()  # the app, started in the same directory
    assert (str(app.data_dir), app.label_studio_port, app.label_studio_url) == (
        values["data_dir"],
        8095,
        values["ls_url"],
    )
    assert run_sh_settings(project, clean_env(LABEL_STUDIO_PORT="9000"))["ls_port"] == "9000"  # env wins


def test_run_sh_says_what_make_run_will_use_and_names_a_bad_setting(tmp_path: Path) -> None:
    project, data = project_with_dotenv(tmp_path)

    def run_sh(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "scripts/run.sh", *args],
            cwd=project,
            env=clean_env(**extra),
            capture_output=True,
            text=True,
        )

    shown = run_sh("--settings", OPENAI_API_KEY="sk-test")
    assert shown.returncode == 0, shown.stderr
    assert f"data:         {data}" in shown.stdout and "answers:      OpenAI gpt-4.1-mini" in shown.stdout
    assert "Label Studio: http://127.0.0.1:8095, started by make run" in shown.stdout
    assert "abc#def" not in shown.stdout and "sk-test" not in shown.stdout  # no secret on the screen
    elsewhere = run_sh("--settings", LABEL_STUDIO_URL="https://ls.example.com", LABEL_STUDIO_API_KEY="")
    assert "https://ls.example.com (not started here; API key NOT SET" in elsewhere.stdout
    for mode in ("--settings", "--shell-settings"):
        bad = run_sh(mode, CHUNK_SIZE="800 chars")
        assert bad.returncode != 0 and "Traceback" not in bad.stderr
        assert bad.stderr.startswith("error: CHUNK_SIZE='800 chars': Input should be a valid integer")


def test_labelstudio_sh_reads_dotenv_as_the_app_does(tmp_path: Path) -> None:
    project, data = project_with_dotenv(tmp_path)

    def url(**extra: str) -> str:
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "labelstudio.sh"), "url"],
            cwd=project,
            env=clean_env(**extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert url() == "http://127.0.0.1:8095"
    assert data.is_dir()  # its data dir is the app's DATA_DIR, quotes and comment left out
    assert url(LABEL_STUDIO_PORT="9000") == "http://127.0.0.1:9000"


def test_an_app_install_accepts_a_current_dev_install(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("requirements.txt", "requirements-dev.txt", "scripts/bootstrap.sh"):
        shutil.copy(ROOT / name, project / name)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    inputs = b"".join((project / n).read_bytes() for n in ("requirements.txt", "requirements-dev.txt"))
    digest = hashlib.sha256(inputs + (project / "scripts/bootstrap.sh").read_bytes()).hexdigest()[:16]

    def bootstrap_app() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "scripts/bootstrap.sh", "app"], cwd=project, capture_output=True, text=True, timeout=60
        )

    (project / ".venv" / f".installed-dev-{digest}").touch()  # what `make test` leaves
    done = bootstrap_app()
    assert done.returncode == 0, done.stderr
    assert "installing" not in done.stdout  # `make run` after `make test` runs no pip

    (project / ".venv" / f".installed-dev-{digest}").rename(
        project / ".venv" / ".installed-dev-0ld0ld0ld0ld0ld0"
    )
    stale = bootstrap_app()  # requirements changed since that dev install: this venv has no pip to run
    assert "installing Python packages into .venv (app" in stale.stdout and stale.returncode != 0


def test_make_run_whose_first_ingest_fails_starts_the_app_and_says_how_to_ingest(
    tmp_path: Path, docs_repo: Path
) -> None:
    """No access to GitHub (here: a DOCS_REPO that does not exist): the app starts all the same."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env(
        DATA_DIR=str(tmp_path / "data"),
        DOCS_REPO=str(tmp_path / "no-such-repo"),
        PORT=str(port),
        HOST="127.0.0.1",
        LABEL_STUDIO_URL="http://127.0.0.1:9",  # elsewhere: make run starts none
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",  # no local model to start either
    )
    out = (tmp_path / "make-run.log").open("w")
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def health() -> dict | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    return json.load(response)
            except OSError:
                assert proc.poll() is None, (tmp_path / "make-run.log").read_text()
                return None

        deadline = time.monotonic() + 180
        while (status := health()) is None and time.monotonic() < deadline:
            time.sleep(0.5)
        said = (tmp_path / "make-run.log").read_text()
        assert status is not None and status["ingested"] is False, said
        assert "make run: the ingest above failed; the app starts anyway" in said
        assert ".venv/bin/python ingest.py --repo PATH_OR_URL" in said

        # As it says: ingest from a local path, and the running app answers from it.
        ingested = subprocess.run(
            [sys.executable, "ingest.py", "--repo", str(docs_repo), "--ref", "v1"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert ingested.returncode == 0, ingested.stderr
        assert health() == {**health(), "ingested": True}  # type: ignore[dict-item]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        out.close()


def test_the_app_on_a_port_in_use_says_so_and_how_to_choose_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(DATA_DIR=str(tmp_path / "data"), OPENAI_BASE_URL="http://127.0.0.1:9/v1")
        proc = subprocess.run(
            [sys.executable, "app.py", "--port", str(port)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"error: port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert f"--port {port + 1}" in proc.stderr and "Errno" not in proc.stderr
    assert "Docs QA on" not in proc.stdout  # no address printed that nothing serves


def test_a_relative_data_dir_is_the_projects_wherever_a_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cd /tmp && python ~/docs-qa/app.py gaps` must read the app's log, not start an empty /tmp/data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATA_DIR")
    assert get_settings().data_dir == ROOT / "data"
    monkeypatch.setenv("DATA_DIR", "state/mine")
    assert get_settings().data_dir == ROOT / "state" / "mine"
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "elsewhere"))
    assert get_settings().data_dir == tmp_path / "elsewhere"  # an absolute one as it is
