"""`python -m feedback ...` as a person runs it: a real subprocess, settings from the environment."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from feedback_testkit import LEAKY, ROOT, LabelStudioServer, answer, free_port, wait_for

from feedback import FeedbackLog, SyncWorker
from settings import Settings, get_settings

# Settings that decide whether answers are pre-rated: a developer's shell must not decide the report's words.
NO_JUDGE = {"PRE_RATE": "auto", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "LOCAL_LLM_MODEL": ""}


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in LEAKY}
    clean.update(PYTHONPATH=str(ROOT), COLUMNS="200", **NO_JUDGE)
    clean.update(env)
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
    log.review(ids[0], "bad", "outdated", reviewer="ana", source="inline", problems=["incomplete"])
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
    assert "What was wrong with the answers reviewers rejected (1)" in report.stdout
    assert "Incomplete" in report.stdout and "retrieval missing the rest of the page" in report.stdout
    assert (
        "What users said was wrong, on 1 thumbs down no reviewer has judged yet: nothing ticked."
        in report.stdout
    )

    as_json = json.loads(run(["report", "--json", "--by", "overall"], tmp_path, **env).stdout)
    assert as_json["overall"][0] | {} == as_json["overall"][0]
    assert (as_json["overall"][0]["rated"], as_json["overall"][0]["good"]) == (3, 1)
    assert (as_json["problems"]["rejected"], as_json["problems"]["counts"]["incomplete"]) == (1, 1)

    out = tmp_path / "out" / "log.csv"
    result = run(["export", "--format", "csv", "--output", str(out)], tmp_path, **env)
    assert result.returncode == 0 and "exported 4 exchange(s)" in result.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows[:3]] == ids
    assert rows[0]["verdict"] == "bad" and rows[0]["verdict_source"] == "reviewer"
    assert (rows[0]["reviewer"], rows[0]["reviewer_comment"], rows[0]["reviewer_problems"]) == (
        "ana",
        "outdated",
        "incomplete",
    )
    assert rows[1]["user_comment"] == "needs the flag"

    jsonl = run(
        ["export", "--format", "jsonl", "--since", "2026-11-02", "--verdict", "good"], tmp_path, **env
    )
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["id"] for r in records] == [ids[2]]

    finetune = run(["export", "--format", "openai-finetune"], tmp_path, **env)
    examples = [json.loads(line) for line in finetune.stdout.splitlines()]
    assert len(examples) == 1 and [m["role"] for m in examples[0]["messages"]] == ["user", "assistant"]
    assert "exported 1 exchange(s) as openai-finetune\n" in finetune.stderr, finetune.stderr

    sync = run(["sync"], tmp_path, **env)
    assert sync.returncode == 0
    assert "not configured" in sync.stdout and "4 rating(s) and Review-tab verdict(s)" in sync.stdout

    bad = run(["export", "--format", "csv", "--since", "yesterday"], tmp_path, **env)
    assert bad.returncode == 2 and "--since must be a date" in bad.stderr
    bad = run(["export", "--format", "xml"], tmp_path, **env)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

    # A "the docs don't cover this" reply a user liked is no example to train on: left out, and said so.
    with FeedbackLog(local_settings.feedback_db) as log:
        silent = answer(log, 5, answer="The docs don't seem to cover this.", prompt_version="abstain-v2")
        log.rate(silent, "good")
    finetune = run(["export", "--format", "openai-finetune"], tmp_path, **env)
    assert len(finetune.stdout.splitlines()) == 1, finetune.stdout
    assert (
        "exported 1 exchange(s) as openai-finetune (1 rated good left out: they said the docs don't cover "
        "the question, a reply no model wrote)" in finetune.stderr
    ), finetune.stderr
    jsonl = run(["export", "--format", "jsonl", "--verdict", "good"], tmp_path, **env)
    assert silent in jsonl.stdout  # the analysis formats keep it


def ls_env(settings: Settings, label_studio: LabelStudioServer) -> dict[str, str]:
    """The environment of a shell pointed at the test's Label Studio and data dir."""
    return {
        "DATA_DIR": str(settings.data_dir),
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "LABEL_STUDIO_PROJECT": settings.label_studio_project,
        "PUBLIC_URL": settings.app_url,
    }


def test_sync_and_status_against_label_studio(
    ls_settings: Settings, label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        seed(log)
    env = ls_env(ls_settings, label_studio)
    wrong = run(["sync"], tmp_path, **{**env, "LABEL_STUDIO_API_KEY": "wrong-token-xyz"})
    assert wrong.returncode == 1
    # The error with what to do, first and once; no summary that reads like success ("0 task(s) created").
    assert wrong.stdout.startswith(
        "error: Label Studio refused the API key (401) — check LABEL_STUDIO_API_KEY, set in the environment "
        "(it wins over .env)\n"
    ), wrong.stdout
    assert "task(s) created" not in wrong.stdout and "refused" not in wrong.stderr, (
        wrong.stdout + wrong.stderr
    )
    assert "4 pending" in wrong.stdout  # 3 thumbs, 1 verdict: kept for later

    sync = run(["sync"], tmp_path, **env)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert "3 task(s) created" in sync.stdout and "0 pending" in sync.stdout
    assert "1 Review-tab verdict(s) sent" in sync.stdout
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

    # LABEL_STUDIO_URL naming that same local Label Studio, without a key: the saved token is used.
    named = run(["sync"], tmp_path, **{**env, "LABEL_STUDIO_URL": label_studio.url + "/"})
    assert named.returncode == 0, named.stdout + named.stderr
    assert f"Label Studio {label_studio.url}:" in named.stdout and "0 pending" in named.stdout
    # Another Label Studio never gets the local admin's token; the message names only what is missing.
    other = run(["sync"], tmp_path, **{**env, "LABEL_STUDIO_URL": "http://127.0.0.1:9"})
    assert "not configured (set LABEL_STUDIO_API_KEY)" in other.stdout, other.stdout
    status = run(["status"], tmp_path, **{**env, "LABEL_STUDIO_URL": "http://127.0.0.1:9"})
    assert "set LABEL_STUDIO_API_KEY)" in status.stdout and "LABEL_STUDIO_URL and" not in status.stdout


def test_a_refused_key_names_where_it_came_from_and_what_to_do(
    label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    """A token rotated in Label Studio: the error says which copy of the key is stale, and what to change."""
    data = tmp_path / "data"
    credentials = data / "labelstudio" / "credentials"
    credentials.parent.mkdir(parents=True)
    # What scripts/labelstudio.sh saved on its first start; the admin has reset the token since.
    credentials.write_text(
        "LABEL_STUDIO_USERNAME=admin@example.com\nLABEL_STUDIO_USER_TOKEN=stale0token0saved0at0start\n"
    )
    with FeedbackLog(data / "feedback.sqlite") as log:
        log.rate(answer(log), "good")
    env = {
        "DATA_DIR": str(data),
        "LABEL_STUDIO_PORT": str(label_studio.port),
        "LABEL_STUDIO_PROJECT": f"Docs QA rotated {os.getpid()}",
        "PUBLIC_URL": "http://127.0.0.1:9",
    }
    saved = (
        f"Label Studio refused the API key (401) — the key in use is the admin token scripts/labelstudio.sh "
        f"saved in {credentials} for the Label Studio `make run` starts, and Label Studio no longer accepts it "
        "(was it reset there?): put a current token (Label Studio: Account & Settings) in .env as "
        "LABEL_STUDIO_API_KEY"
    )
    # The CLI finds the saved token itself; `make run` exports it as LABEL_STUDIO_API_KEY (scripts/run.sh).
    for extra in (
        {},
        {"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": "stale0token0saved0at0start"},
    ):
        for command in ("sync", "status"):
            result = run([command], tmp_path, **env, **extra)
            assert result.returncode == 1, result.stdout + result.stderr
            assert f"error: {saved}\n" in result.stdout, (extra, result.stdout)

    # A key of one's own: in .env, or in the environment (which wins over .env).
    (tmp_path / ".env").write_text("LABEL_STUDIO_API_KEY=rotated-key-in-dotenv\n")
    result = run(["sync"], tmp_path, **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "error: Label Studio refused the API key (401) — check LABEL_STUDIO_API_KEY in .env\n"
        in result.stdout
    )
    result = run(["status"], tmp_path, **env, LABEL_STUDIO_API_KEY="rotated-key-in-env")
    assert (
        "error: Label Studio refused the API key (401) — check LABEL_STUDIO_API_KEY, set in the environment "
        "(it wins over .env)\n" in result.stdout
    ), result.stdout


def test_each_data_dir_keeps_its_own_webhook_and_a_cli_sync_registers_none(
    ls_settings: Settings, label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    """Two apps on one project each keep their hook; `status` says whether this data dir's is there."""
    apps = {
        name: get_settings(data_dir=tmp_path / name, public_url=f"http://127.0.0.1:{free_port()}")
        for name in ("a", "b")
    }
    url = {name: settings.app_url + "/webhooks/label-studio" for name, settings in apps.items()}
    client = label_studio.client()
    project = label_studio.project_id  # (made by the first sync)

    def hooks() -> dict[int, str]:
        return {
            h.id: h.url for h in client.webhooks.list(project=str(project(ls_settings.label_studio_project)))
        }

    for settings in apps.values():  # the apps' workers: each registers its own
        with FeedbackLog(settings.feedback_db) as log:
            assert SyncWorker(log, settings).flush().ok
    registered = hooks()
    assert sorted(registered.values()) == sorted(url.values()), registered

    # A one-off sync (no PORT or PUBLIC_URL: it would name http://127.0.0.1:7860) touches no hook.
    env_a = {**ls_env(ls_settings, label_studio), "DATA_DIR": str(apps["a"].data_dir)}
    del env_a["PUBLIC_URL"]
    sync = run(["sync"], tmp_path, **env_a)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert hooks() == registered

    # App a comes back on another port: its own hook follows it; b's stays.
    moved = get_settings(data_dir=apps["a"].data_dir, public_url=f"http://127.0.0.1:{free_port()}")
    with FeedbackLog(moved.feedback_db) as log:
        assert SyncWorker(log, moved).flush().ok
    (a_id,) = [i for i, u in registered.items() if u == url["a"]]
    assert hooks() == {**registered, a_id: moved.app_url + "/webhooks/label-studio"}

    status = run(["status"], tmp_path, **env_a)
    assert status.returncode == 0, status.stdout + status.stderr
    line = f"  webhook:   {moved.app_url}/webhooks/label-studio (id {a_id}, registered in Label Studio)\n"
    assert line in status.stdout, status.stdout
    as_json = json.loads(run(["status", "--json"], tmp_path, **env_a).stdout)
    assert as_json["webhook_check"]["registered"] is True

    # Deleted in Label Studio: status says so rather than naming it, and the app registers it again.
    client.webhooks.delete(id=a_id)
    status = run(["status"], tmp_path, **env_a)
    assert (
        f"  webhook:   {moved.app_url}/webhooks/label-studio (id {a_id}) is not registered: it is no longer "
        "in Label Studio (deleted there?); verdicts come back by the pull only (every 30 s) until the app "
        "registers it again (within 5 minutes while it runs)\n" in status.stdout
    ), status.stdout
    with FeedbackLog(moved.feedback_db) as log:
        worker = SyncWorker(log, moved, webhook_check_interval=0)
        assert worker.flush().ok  # connects: registers it
        client.webhooks.delete(id=int(log.get_state()["webhook_id"]))
        assert worker.flush().ok  # connected already: its periodic look finds it gone
        new_id = int(log.get_state()["webhook_id"])
    assert hooks() == {i: u for i, u in registered.items() if u == url["b"]} | {
        new_id: moved.app_url + "/webhooks/label-studio"
    }
    status = run(["status"], tmp_path, **env_a)
    assert f"(id {new_id}, registered in Label Studio)\n" in status.stdout, status.stdout


def test_exports_into_a_closed_pipe_end_quietly(local_settings: Settings, tmp_path: Path) -> None:
    """`python -m feedback export ... | head`: no BrokenPipeError traceback, the SIGPIPE status."""
    with FeedbackLog(local_settings.feedback_db) as log:
        for n in range(200):  # ~300 KB: more than a pipe holds
            log.rate(answer(log, n, answer="Run `label-studio start -p 9000`. " * 40), "good")
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    env.update(PYTHONPATH=str(ROOT), DATA_DIR=str(local_settings.data_dir))
    for fmt in ("csv", "jsonl"):
        process = subprocess.Popen(
            [sys.executable, "-m", "feedback", "export", "--format", fmt],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline()  # what `head -1` reads, then it exits
        process.stdout.close()
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == 141, stderr
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
        assert "exported" not in stderr  # not claimed: the reader did not take it all


def test_the_report_never_cuts_group_names_in_a_narrow_console(
    local_settings: Settings, tmp_path: Path
) -> None:
    model, prompt = "SmolLM2-1.7B-Instruct-Q4_K_M.gguf", "answer-with-citations-v2"
    with FeedbackLog(local_settings.feedback_db) as log:
        log.rate(answer(log, model=model, prompt_version=prompt, time="2026-11-01T12:00:00+00:00"), "bad")
    for columns in ("80", "40"):
        report = run(["report"], tmp_path, DATA_DIR=str(local_settings.data_dir), COLUMNS=columns)
        assert report.returncode == 0, report.stderr
        for name in (model, prompt, "2026-11-01"):
            assert name in report.stdout, (columns, report.stdout)
        assert report.stdout.count("0.0%") == 6 * 2, report.stdout  # accuracy and user acc., 6 tables
        assert "…" not in report.stdout, report.stdout


def test_a_one_off_run_with_another_key_leaves_the_apps_status_alone(
    ls_settings: Settings, label_studio: LabelStudioServer, tmp_path: Path, make_worker
) -> None:
    env = {
        "DATA_DIR": str(ls_settings.data_dir),
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_PROJECT": ls_settings.label_studio_project,
        "PUBLIC_URL": ls_settings.app_url,
    }
    with FeedbackLog(ls_settings.feedback_db) as log:
        worker: SyncWorker = make_worker(log, ls_settings)
        worker.start()  # the app's worker: its status is the one people see
        log.rate(answer(log), "good")
        wait_for(lambda: (s := worker.status()).last_success_at and not s.pending, timeout=30)

        wrong = run(["sync"], tmp_path, **env, LABEL_STUDIO_API_KEY="wrong-token-xyz")
        assert wrong.returncode == 1 and "refused the API key (401)" in wrong.stdout
        assert worker.status().last_error == ""  # the app still shows its own, healthy state

        same = run(["sync"], tmp_path, **env, LABEL_STUDIO_API_KEY=label_studio.token)
        assert same.returncode == 0, same.stdout + same.stderr  # same settings: it may update the status


def test_status_checks_the_key_and_says_when_label_studio_refuses_it_or_is_down(
    ls_settings: Settings, label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    """`status` asks Label Studio with its settings: the log's "all delivered" may be from another key."""
    with FeedbackLog(ls_settings.feedback_db) as log:
        seed(log)
    env = ls_env(ls_settings, label_studio)
    assert run(["sync"], tmp_path, **env).returncode == 0

    # A narrow console, not a terminal: prose still comes one line per sentence.
    ok = run(["status"], tmp_path, **env, COLUMNS="40")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (
        f"Label Studio at {label_studio.url} answers and accepts the API key (admin@example.com).\n"
        in ok.stdout
    )
    assert re.search(
        r"^Label Studio: all 3 rated answer\(s\) delivered \(last sync [\d-]+ [\d:]+ UTC\)\.$",
        ok.stdout,
        re.MULTILINE,
    ), ok.stdout

    refused = run(["status"], tmp_path, **{**env, "LABEL_STUDIO_API_KEY": "wrongkey123"})
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert (
        "error: Label Studio refused the API key (401) — check LABEL_STUDIO_API_KEY, set in the environment "
        "(it wins over .env)\n" in refused.stdout
    ), refused.stdout
    assert "all 3 rated answer(s) delivered" not in refused.stdout, refused.stdout
    assert "0 change(s) waiting; 3 rated answer(s) delivered before" in refused.stdout

    as_json = run(["status", "--json"], tmp_path, **{**env, "LABEL_STUDIO_API_KEY": "wrongkey123"})
    assert as_json.returncode == 1
    connection = json.loads(as_json.stdout)["connection"]
    assert connection["ok"] is False and "refused the API key (401)" in connection["error"]

    nowhere = f"http://127.0.0.1:{free_port()}"
    down = run(["status"], tmp_path, **{**env, "LABEL_STUDIO_URL": nowhere})
    assert down.returncode == 1, down.stdout + down.stderr
    assert (
        f"error: Label Studio at {nowhere} is not reachable — is it running? scripts/labelstudio.sh start"
        in down.stdout
    )

    local = run(["status"], tmp_path, DATA_DIR=str(ls_settings.data_dir))
    assert local.returncode == 0, local.stdout + local.stderr
    assert "Feedback is kept locally only (Label Studio is not configured" in local.stdout


def test_prose_is_not_wrapped_when_stdout_is_not_a_terminal(local_settings: Settings, tmp_path: Path) -> None:
    """A pipe or a file gets whole sentences: Rich's 80 (or COLUMNS) columns are for terminals."""
    with FeedbackLog(local_settings.feedback_db) as log:
        seed(log)
    for command in (["report"], ["status"]):
        out = run(command, tmp_path, DATA_DIR=str(local_settings.data_dir), COLUMNS="40").stdout
        lines = out.splitlines()
        assert (
            "Feedback is kept locally only (Label Studio is not configured: "
            "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)."
        ) in lines, out
        if command == ["report"]:
            assert (
                "Accuracy = good / rated; a reviewer's verdict counts where there is one, "
                "the user's thumbs elsewhere."
            ) in lines, out
            assert "│ 2026-11-01 │" in out  # tables keep their columns


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {},
            "Pre-rating is off (PRE_RATE=auto does not pre-rate with the bundled local model; "
            "set PRE_RATE=on to use it).",
        ),
        (
            {"LOCAL_LLM_MODEL": "/models/other.gguf"},
            "Pre-rating is off (PRE_RATE=auto does not pre-rate with the local model (LOCAL_LLM_MODEL); "
            "set PRE_RATE=on to use it).",
        ),
        (
            {"PRE_RATE": "off", "OPENAI_API_KEY": "sk-test"},
            "Pre-rating is off (PRE_RATE=off; set PRE_RATE=auto or on to have a model pre-rate answers).",
        ),
        ({"PRE_RATE": "on"}, "No answer is pre-rated yet (PRE_RATE)."),
        ({"OPENAI_API_KEY": "sk-test"}, "No answer is pre-rated yet (PRE_RATE)."),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, "No answer is pre-rated yet (PRE_RATE)."),
    ],
)
def test_the_report_says_when_pre_rating_is_off_by_its_settings(
    local_settings: Settings, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    """Not "No answer is pre-rated yet" when no answer will be: the local model does not pre-rate."""
    with FeedbackLog(local_settings.feedback_db) as log:
        seed(log)
    env = {"DATA_DIR": str(local_settings.data_dir), **env}

    report = run(["report", "--by", "overall"], tmp_path, **env)

    assert report.returncode == 0, report.stderr
    assert expected in report.stdout.splitlines(), report.stdout
    as_json = json.loads(run(["report", "--json", "--by", "overall"], tmp_path, **env).stdout)
    assert as_json["pre_rating_agreement"]["summary"] == expected


def test_the_report_keeps_earlier_pre_ratings_when_pre_rating_is_off_now(
    local_settings: Settings, tmp_path: Path
) -> None:
    with FeedbackLog(local_settings.feedback_db) as log:
        ids = seed(log)
        log.set_pre_rating(
            ids[1], "bad", "cites the wrong page", model="gpt-4.1-mini", prompt_version="judge-v1"
        )

    report = run(["report", "--by", "overall"], tmp_path, DATA_DIR=str(local_settings.data_dir))

    assert (
        "1 answers pre-rated, none reviewed yet; 1 pre-rated Bad wait for a reviewer. Pre-rating is off now "
        "(PRE_RATE=auto does not pre-rate with the bundled local model; set PRE_RATE=on to use it)."
    ) in report.stdout.splitlines(), report.stdout
