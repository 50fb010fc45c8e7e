"""`python -m feedback ...` as a person runs it: a real subprocess, settings from the environment."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from feedback_testkit import LEAKY, ROOT, LabelStudioServer, answer

from feedback import FeedbackLog
from settings import Settings


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in LEAKY}
    clean.update(PYTHONPATH=str(ROOT), COLUMNS="200", **env)
    return subprocess.run(
        [sys.executable, "-m", "feedback", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def seed(log: FeedbackLog) -> list[str]:
    ids = []
    for n, (day, thumbs) in enumerate(
        [("2026-11-01", "good"), ("2026-11-01", "bad"), ("2026-11-02", "good")]
    ):
        exchange_id = answer(log, n, time=f"{day}T12:00:00.000+00:00", prompt_version=f"v{n % 2 + 1}")
        log.rate(exchange_id, thumbs, comment="needs the flag" if thumbs == "bad" else None)
        ids.append(exchange_id)
    log.review(ids[0], "bad", "outdated", source="inline")
    answer(log, 9, time="2026-11-02T13:00:00.000+00:00")  # never rated
    return ids


def test_report_and_exports_without_label_studio(local_settings: Settings, tmp_path: Path) -> None:
    with FeedbackLog(local_settings.feedback_db) as log:
        ids = seed(log)
    env = {"DATA_DIR": str(local_settings.data_dir)}

    report = run(["report"], tmp_path, **env)
    assert report.returncode == 0, report.stderr
    for heading in ("Overall", "Per day", "Per prompt version", "Per model"):
        assert heading in report.stdout
    assert "33.3%" in report.stdout  # 1 good of 3: the reviewer turned the first one bad
    assert "kept locally only" in report.stdout

    as_json = json.loads(run(["report", "--json", "--by", "overall"], tmp_path, **env).stdout)
    assert as_json["overall"][0] | {} == as_json["overall"][0]
    assert (as_json["overall"][0]["rated"], as_json["overall"][0]["good"]) == (3, 1)

    out = tmp_path / "out" / "log.csv"
    result = run(["export", "--format", "csv", "--output", str(out)], tmp_path, **env)
    assert result.returncode == 0 and "exported 4 exchange(s)" in result.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows[:3]] == ids
    assert rows[0]["verdict"] == "bad" and rows[0]["verdict_source"] == "reviewer"
    assert rows[1]["user_comment"] == "needs the flag"

    jsonl = run(
        ["export", "--format", "jsonl", "--since", "2026-11-02", "--verdict", "good"], tmp_path, **env
    )
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["id"] for r in records] == [ids[2]]

    finetune = run(["export", "--format", "openai-finetune"], tmp_path, **env)
    examples = [json.loads(line) for line in finetune.stdout.splitlines()]
    assert len(examples) == 1 and [m["role"] for m in examples[0]["messages"]] == ["user", "assistant"]

    sync = run(["sync"], tmp_path, **env)
    assert sync.returncode == 0
    assert "not configured" in sync.stdout and "3 rated answer(s)" in sync.stdout

    bad = run(["export", "--format", "csv", "--since", "yesterday"], tmp_path, **env)
    assert bad.returncode == 2 and "--since must be a date" in bad.stderr
    bad = run(["export", "--format", "xml"], tmp_path, **env)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_sync_and_status_against_label_studio(
    ls_settings: Settings, label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        seed(log)
    env = {
        "DATA_DIR": str(ls_settings.data_dir),
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "LABEL_STUDIO_PROJECT": ls_settings.label_studio_project,
        "PUBLIC_URL": ls_settings.app_url,
    }
    wrong = run(["sync"], tmp_path, **{**env, "LABEL_STUDIO_API_KEY": "wrong-token-xyz"})
    assert wrong.returncode == 1
    assert "refused the API key (401)" in wrong.stdout and "3 pending" in wrong.stdout

    sync = run(["sync"], tmp_path, **env)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert "3 task(s) created" in sync.stdout and "0 pending" in sync.stdout
    assert len(label_studio.tasks(ls_settings.label_studio_project)) == 3

    status = run(["status"], tmp_path, **env)
    assert "all 3 rated answer(s) delivered" in status.stdout
    assert f"{label_studio.url}/projects/" in status.stdout
    assert run(["sync"], tmp_path, **env).stdout.count("0 task(s) created") == 1  # nothing sent twice


def test_the_cli_finds_the_local_label_studio_that_make_run_started(
    label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    """`make run` hands URL and token to the app only; the CLI finds them under DATA_DIR itself."""
    data = label_studio.data_dir  # where scripts/labelstudio.sh saved the admin's token
    with FeedbackLog(data / "feedback.sqlite") as log:
        seed(log)
    env = {
        "DATA_DIR": str(data),
        "LABEL_STUDIO_PORT": str(label_studio.port),
        "LABEL_STUDIO_PROJECT": f"Docs QA local {os.getpid()}",
        "PUBLIC_URL": "http://127.0.0.1:9",
    }

    sync = run(["sync"], tmp_path, **env)

    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert f"Label Studio {label_studio.url}" in sync.stdout and "3 task(s) created" in sync.stdout
    elsewhere = run(["sync"], tmp_path, **{**env, "DATA_DIR": str(tmp_path / "fresh")})
    assert "not configured" in elsewhere.stdout  # no local Label Studio was ever started there
