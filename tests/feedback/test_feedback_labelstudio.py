"""Ratings reach a real Label Studio exactly once, whatever state it is in."""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from feedback_testkit import LabelStudioServer, answer, field, user_predictions, wait_for

from feedback import FeedbackLog, SyncWorker
from feedback.labelstudio import LabelStudioProject, upgrade_label_config
from feedback.review_task import (
    LABEL_CONFIG,
    NO_HINTS,
    PREVIOUS_LABEL_CONFIGS,
    SILENT_HINT,
    USER_MODEL_VERSION,
    task_data,
)
from feedback.review_views import OLD_TASK_HINTS, REVIEW_VIEWS, TASK_KEYS
from settings import Settings


def test_the_data_manager_has_a_column_for_every_key_a_task_holds(tmp_path) -> None:
    """The tabs list each key of a task's data by name: a key added to one and not the other
    would be a column no tab can show, or one that is always empty."""
    with FeedbackLog(tmp_path / "feedback.db") as log:
        exchange = log.get(answer(log))
    assert set(task_data(exchange, "good", "", ())) == set(TASK_KEYS)


def test_a_rated_exchange_arrives_with_its_data_and_the_users_prediction(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = answer(log)
        answer(log, 2)  # not rated: stays local
        log.rate(exchange_id, "bad")
        log.set_comment(exchange_id, "It is -p 9000")
        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and report.created == 1, report

        project = label_studio.client().projects.get(
            id=label_studio.project_id(ls_settings.label_studio_project)
        )
        assert project.label_config.strip() == LABEL_CONFIG.strip()
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        data = task.data
        assert data["exchange_id"] == exchange_id
        assert data["question"] == (  # what was searched, as the chat made the question stand alone
            "How do I start Label Studio on another port? (0)\n\n"
            "(A follow-up in a conversation; searched as: “How to start Label Studio on a different port (0)”)"
        )
        assert data["answer"] == "Run `label-studio start -p 9000` [1]."
        assert "docs/start.md — Start > Ports" in data["sources"]
        assert (
            "\n    “Use `label-studio start -p 9000` to serve it on another port.”" in data["sources"]
        )  # as in the chat
        assert (data["prompt_version"], data["model"], data["user_rating"]) == ("v1", "fake-model", "bad")
        assert data["user_comment"] == "It is -p 9000"
        # What the user said is read-only task data the view shows under its own heading ...
        assert data["user_feedback"] == "Bad 👎, comment: It is -p 9000"
        assert '<Header value="What the user said' in project.label_config
        assert '<Text name="user_feedback" value="$user_feedback"/>' in project.label_config
        # ... and the prediction pre-selects the thumb only: the reviewer's comment box starts empty.
        (prediction,) = user_predictions(task)
        assert field(prediction, "result") == [
            {"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Bad"]}},
        ]

        # A changed comment reaches the task's data; what the user ticked as wrong too, in their
        # words, and pre-ticked for the reviewer to confirm.
        log.set_comment(exchange_id, "It is -p 9000, not --port", ["Not what I asked"])
        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and (report.created, report.updated) == (0, 1), report
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        assert task.data["user_comment"] == "It is -p 9000, not --port"
        assert task.data["user_feedback"] == "Bad 👎: not what I asked, comment: It is -p 9000, not --port"
        (prediction,) = user_predictions(task)
        assert [r["value"]["choices"] for r in field(prediction, "result")] == [
            ["Bad"],
            ["Wrong passages: the sources don't answer it"],
        ]

        # A changed mind updates the same task's prediction; no second task.
        log.rate(exchange_id, "good", comment="")
        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and (report.created, report.updated) == (0, 1), report
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        assert task.data["user_rating"] == "good"
        assert task.data["user_feedback"] == "Good 👍 (no comment)"
        (prediction,) = user_predictions(task)
        assert field(prediction, "result") == [
            {"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Good"]}},
        ]
        assert log.get(exchange_id).sync == "delivered"  # type: ignore[union-attr]
        status = SyncWorker(log, ls_settings).status()
        assert (status.pending, status.delivered, status.last_error) == (0, 1, "")
        assert status.project_url.startswith(label_studio.url + "/projects/")


def test_label_studio_down_during_100_ratings_then_all_delivered_exactly_once(
    ls_settings: Settings, label_studio: LabelStudioServer, make_worker
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        worker = make_worker(log, ls_settings)
        worker.start()
        first = answer(log, -1)
        log.rate(first, "good")
        wait_for(lambda: log.pending_count() == 0, timeout=30)  # project exists, one task in

        label_studio.stop()
        try:
            ids = [answer(log, n) for n in range(100)]
            slowest = 0.0
            for n, exchange_id in enumerate(ids):
                started = time.perf_counter()
                log.rate(exchange_id, "good" if n % 3 else "bad", comment=f"c{n}" if n % 5 == 0 else None)
                slowest = max(slowest, time.perf_counter() - started)
            assert slowest < 0.5, f"a rating took {slowest:.3f}s while Label Studio was down"
            status = wait_for(lambda: (s := worker.status()).last_error and s, timeout=30)
            assert (
                "not reachable" in status.last_error and "scripts/labelstudio.sh start" in status.last_error
            )
            assert status.pending >= 99
        finally:
            label_studio.start()

        wait_for(lambda: log.pending_count() == 0, timeout=90, interval=0.5)
        tasks = label_studio.tasks(ls_settings.label_studio_project)
        counts = Counter(t.data["exchange_id"] for t in tasks)
        assert len(tasks) == 101
        assert set(counts) == {first, *ids}
        assert max(counts.values()) == 1
        assert worker.status().last_error == ""


def test_a_lost_response_is_not_sent_twice(ls_settings: Settings, label_studio: LabelStudioServer) -> None:
    """A task created by an attempt whose answer never came back is found, not duplicated."""
    with FeedbackLog(ls_settings.feedback_db) as log:
        worker = SyncWorker(log, ls_settings)
        exchange_id = answer(log)
        log.rate(exchange_id, "bad")
        assert worker.flush().created == 1
        # Simulate the crash window: Label Studio has the task, the log forgot it.
        log.reset_delivery_target()
        log.rate(exchange_id, "good")
        report = worker.flush()
        assert report.ok and (report.found, report.created, report.updated) == (1, 0, 1), report
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        assert task.data["user_rating"] == "good"
        assert len(user_predictions(task)) == 1


def test_a_wrong_token_is_a_clear_error_and_ratings_are_unaffected(
    ls_settings: Settings, label_studio: LabelStudioServer, make_worker
) -> None:
    settings = ls_settings.model_copy(update={"label_studio_api_key": "not-the-right-token-123"})
    with FeedbackLog(settings.feedback_db) as log:
        worker = make_worker(log, settings)
        worker.start()
        exchange_id = answer(log)
        started = time.perf_counter()
        log.rate(exchange_id, "bad", "wrong port")
        assert time.perf_counter() - started < 0.5
        status = wait_for(lambda: (s := worker.status()).last_error and s, timeout=30)
        assert status.last_error == "Label Studio refused the API key (401) — check LABEL_STUDIO_API_KEY"
        assert status.pending == 1
        assert "waiting" in status.message and "401" in status.message
        assert log.get(exchange_id).user_rating == "bad"  # type: ignore[union-attr]


def test_fifty_concurrent_ratings_make_fifty_rows_and_fifty_tasks(
    ls_settings: Settings, label_studio: LabelStudioServer, make_worker
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        worker = make_worker(log, ls_settings)
        worker.start()
        ids = [answer(log, n) for n in range(50)]
        with ThreadPoolExecutor(max_workers=50) as pool:
            list(pool.map(lambda pair: log.rate(pair[1], "good" if pair[0] % 2 else "bad"), enumerate(ids)))
        assert log.counts()["rated"] == 50
        wait_for(lambda: log.pending_count() == 0, timeout=60, interval=0.2)
        tasks = label_studio.tasks(ls_settings.label_studio_project)
        assert sorted(t.data["exchange_id"] for t in tasks) == sorted(ids)


def test_a_personal_access_token_works_too(ls_settings: Settings, label_studio: LabelStudioServer) -> None:
    pat = label_studio.client().tokens.create().token
    assert pat and pat.count(".") == 2  # a JWT refresh token; the SDK exchanges it
    settings = ls_settings.model_copy(update={"label_studio_api_key": pat})
    with FeedbackLog(settings.feedback_db) as log:
        log.rate(answer(log), "good")
        report = SyncWorker(log, settings).flush()
        assert report.ok and report.created == 1, report


def test_a_deleted_project_is_created_again_and_everything_redelivered(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        worker = SyncWorker(log, ls_settings)
        ids = [answer(log, n) for n in range(3)]
        for exchange_id in ids:
            log.rate(exchange_id, "good")
        assert worker.flush().created == 3
        label_studio.client().projects.delete(id=label_studio.project_id(ls_settings.label_studio_project))

        log.rate(ids[0], "bad")
        first = worker.flush()  # the update meets a 404: said plainly, then set up again
        assert "404" in first.error and "LABEL_STUDIO_URL" in first.error
        second = worker.flush()
        assert second.ok and second.created == 3, second
        tasks = label_studio.tasks(ls_settings.label_studio_project)
        assert sorted(t.data["exchange_id"] for t in tasks) == sorted(ids)


def test_a_reviewer_who_accepts_the_prediction_stores_no_comment_of_the_users(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    """Submitting the pre-filled task unchanged: the user's thumb, and an empty reviewer comment."""
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = answer(log)
        log.rate(exchange_id, "bad", comment="It is -p 9000")
        worker = SyncWorker(log, ls_settings)
        assert worker.flush(pull=False).created == 1
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        (prediction,) = user_predictions(task)
        # What Label Studio's editor submits when the reviewer accepts the pre-filled result as is.
        label_studio.client().annotations.create(
            id=task.id, result=field(prediction, "result"), parent_prediction=field(prediction, "id")
        )
        assert worker.flush().pulled == 1
        exchange = log.get(exchange_id)
        assert exchange is not None
        assert (exchange.reviewer_rating, exchange.reviewer_comment) == ("bad", "")
        assert exchange.user_comment == "It is -p 9000"
        assert exchange.reviewer == "admin@example.com"  # readable, not Label Studio's user id "1"


def test_a_project_with_the_old_labeling_config_is_upgraded_and_keeps_working(
    ls_settings: Settings, label_studio: LabelStudioServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = label_studio.client()
    title = ls_settings.label_studio_project
    old = client.projects.create(title=title, label_config=PREVIOUS_LABEL_CONFIGS[0])
    assert old.id is not None
    # An annotated task of the old version: its tags stay, so Label Studio accepts the new config.
    (old_task,) = client.projects.import_tasks(
        id=old.id,
        request=[{"data": {"exchange_id": "old", "question": "q", "answer": "a", "sources": "s"}}],
        return_task_ids=True,
    ).task_ids
    comment = {"from_name": "comment", "to_name": "answer", "type": "textarea", "value": {"text": ["x"]}}
    rating = {"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Bad"]}}
    client.annotations.create(id=old_task, result=[rating, comment])
    # A rated task of the first version: no user_feedback, and the user's comment in its prediction.
    (first_task,) = client.projects.import_tasks(
        id=old.id,
        request=[
            {
                "data": {
                    "exchange_id": "first",
                    "question": "q",
                    "answer": "a",
                    "sources": "s",
                    "user_rating": "bad",
                    "user_comment": "wrong port",
                },
                "predictions": [{"model_version": "user-feedback", "result": [rating, comment]}],
            }
        ],
        return_task_ids=True,
    ).task_ids

    with FeedbackLog(ls_settings.feedback_db) as log:
        log.rate(answer(log), "good", comment="thanks")
        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and report.created == 1, report
    assert label_studio.project_id(title) == old.id  # the same project, not a new one
    assert client.projects.get(id=old.id).label_config.strip() == LABEL_CONFIG.strip()
    # its earlier task now shows what the user said, and pre-fills the verdict only
    first = client.tasks.get(id=first_task)
    assert first.data["user_feedback"] == "Bad 👎, comment: wrong port"
    (prediction,) = [
        p for p in client.predictions.list(task=first_task) if p.model_version == "user-feedback"
    ]
    assert [r["from_name"] for r in prediction.result] == ["rating"]

    # A config edited by hand is left alone.
    custom = LABEL_CONFIG.replace("Your verdict", "Verdict")
    client.projects.update(id=old.id, label_config=custom)
    LabelStudioProject.connect(label_studio.url, label_studio.token, title)
    assert client.projects.get(id=old.id).label_config.strip() == custom.strip()

    # Label Studio refusing the update is a warning, not a failed sync.
    client.projects.update(id=old.id, label_config=PREVIOUS_LABEL_CONFIGS[0])
    with caplog.at_level(logging.WARNING, logger="feedback.labelstudio"):
        assert not upgrade_label_config(client, old.id, PREVIOUS_LABEL_CONFIGS[0], wanted="<View><Text")
    assert "keeps its old labeling config" in caplog.text and "400" in caplog.text
    assert client.projects.get(id=old.id).label_config.strip() == PREVIOUS_LABEL_CONFIGS[0].strip()


def test_an_upgrade_whose_backfill_was_cut_short_finishes_on_the_next_connect(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    client = label_studio.client()
    title = ls_settings.label_studio_project
    old = client.projects.create(title=title, label_config=PREVIOUS_LABEL_CONFIGS[0])
    assert old.id is not None
    rated = [
        {
            "data": {
                "exchange_id": f"first-{n}",
                "question": "q",
                "answer": "a",
                "sources": "s",
                "user_rating": "good" if n % 2 else "bad",
                "user_comment": f"comment {n}",
            },
            "predictions": [{"model_version": "user-feedback", "result": []}],
        }
        for n in range(5)
    ]
    unrated = [{"data": {"exchange_id": "unrated", "question": "q", "answer": "a", "sources": "s"}}]
    ids = client.projects.import_tasks(id=old.id, request=rated + unrated, return_task_ids=True).task_ids
    # The config was upgraded, then the app stopped before any earlier task was brought along.
    client.projects.update(id=old.id, label_config=LABEL_CONFIG)

    LabelStudioProject.connect(label_studio.url, label_studio.token, title)

    feedback = {
        client.tasks.get(id=i).data["exchange_id"]: client.tasks.get(id=i).data.get("user_feedback")
        for i in ids
    }
    assert feedback == {
        "first-0": "Bad 👎, comment: comment 0",
        "first-1": "Good 👍, comment: comment 1",
        "first-2": "Bad 👎, comment: comment 2",
        "first-3": "Good 👍, comment: comment 3",
        "first-4": "Bad 👎, comment: comment 4",
        "unrated": None,  # nothing the user said: nothing to show
    }
    for task_id in ids[:5]:
        (prediction,) = [
            p for p in client.predictions.list(task=task_id) if p.model_version == USER_MODEL_VERSION
        ]
        assert [r["from_name"] for r in prediction.result] == ["rating"]
    assert {client.tasks.get(id=i).data["hints"] for i in ids} == {OLD_TASK_HINTS}  # the view's key, each
    # Nothing left to do: the next connect changes nothing (and costs three filtered listings).
    before = [client.tasks.get(id=i).updated_at for i in ids]
    LabelStudioProject.connect(label_studio.url, label_studio.token, title)
    assert [client.tasks.get(id=i).updated_at for i in ids] == before


def test_reviewers_see_a_pre_rating_as_a_hint_also_when_it_comes_after_the_task(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    client = label_studio.client()
    title = ls_settings.label_studio_project
    # A project of the version before hints, with a task of that version.
    old = client.projects.create(title=title, label_config=PREVIOUS_LABEL_CONFIGS[1])
    assert old.id is not None
    data = {"exchange_id": "before", "question": "q", "answer": "a", "sources": "s", "user_feedback": "u"}
    (before,) = client.projects.import_tasks(
        id=old.id, request=[{"data": data}], return_task_ids=True
    ).task_ids

    with FeedbackLog(ls_settings.feedback_db) as log:
        late = answer(log)  # rated before its pre-rating arrives
        log.rate(late, "good")
        early = answer(log, 2)
        log.set_pre_rating(early, "good", "Excerpt [1] gives the flag.", model="judge-model")
        log.rate(early, "good")
        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and report.created == 2, report
        project = client.projects.get(id=old.id)
        assert project.label_config.strip() == LABEL_CONFIG.strip()  # upgraded in place
        assert '<Text name="hints" value="$hints"/>' in project.label_config
        assert client.tasks.get(id=before).data["hints"] == OLD_TASK_HINTS
        tasks = {t.data["exchange_id"]: t for t in label_studio.tasks(title) if t.id != before}
        assert tasks[early].data["hints"] == "Pre-rated Good by judge-model: Excerpt [1] gives the flag."
        assert tasks[early].data["pre_rating"] == "good"  # a Data Manager column to filter on
        assert tasks[late].data["hints"] == NO_HINTS

        log.set_pre_rating(late, "bad", "The excerpts say -p, not --port.", model="judge-model")
        assert log.get(late).sync == "pending"
        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and (report.created, report.updated) == (0, 1), report
        task = client.tasks.get(id=tasks[late].id)
        assert task.data["hints"] == "Pre-rated Bad by judge-model: The excerpts say -p, not --port."
        assert (task.data["pre_rating"], task.data["user_rating"]) == ("bad", "good")
        assert [field(p, "result") for p in user_predictions(task)] == [
            [{"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Good"]}}]
        ]  # the reviewer's pre-selected verdict is still the user's thumb, not the model's
        assert log.get(late).sync == "delivered"


# --- what a reviewer sees and finds -----------------------------------------------------------------
MARKDOWN_ANSWER = """Set the port in the config [1]:

```yaml
server:
  port: 9000
```

The `<Choices>` tag takes <Choice value="A"/> children [2]. ![logo](http://evil.example/x.png) <script>alert(1)</script>

More in [the guide](https://x/guide)."""


def reviewed_answer(log: FeedbackLog, n: int = 0, **overrides: object) -> str:
    """An answer in Markdown, with code, raw HTML and two citations, one passage given and not cited."""
    start = {"n": 1, "source": "docs/start.md", "section": "Start > Ports", "score": 0.91}
    tags = {"n": 2, "source": "docs/tags.md", "section": "Choices", "score": 0.8, "url": "https://x/tags"}
    install = {
        "n": 3,
        "source": "docs/install.md",
        "section": "Install",
        "score": 0.42,
        "url": "https://x/in",
    }
    fields: dict[str, object] = dict(
        answer=MARKDOWN_ANSWER,
        retrieved=[{**start, "url": "https://x/start#ports"}, tags, install],
        cited=[
            {**start, "url": "https://x/start#ports", "quote": "Set **port** under `server`."},
            {**tags, "quote": "Choice · a value to pick"},
        ],
    )
    fields.update(overrides)
    return answer(log, n, **fields)


def test_reviewers_read_the_answer_rendered_with_its_code_and_linked_sources(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        log.rate(reviewed_answer(log), "bad", comment="wrong key")
        assert SyncWorker(log, ls_settings).flush().created == 1
    project = label_studio.client().projects.get(id=label_studio.project_id(ls_settings.label_studio_project))
    assert '<HyperText name="answer" value="$answer_html"' in project.label_config
    assert '<HyperText name="sources" value="$sources_html"' in project.label_config
    (task,) = label_studio.tasks(ls_settings.label_studio_project)
    shown = task.data["answer_html"]
    # Code keeps its indentation (Label Studio's Text tag drops it), Markdown is rendered ...
    assert '<pre><code class="language-yaml">server:\n  port: 9000\n</code></pre>' in shown
    assert "<code>&lt;Choices&gt;</code>" in shown
    # ... HTML in the answer shows as typed, and no image is fetched from anywhere ...
    assert "&lt;Choice value=&quot;A&quot;/&gt;" in shown and "&lt;script&gt;" in shown
    assert "<script" not in shown and "<img" not in shown
    # ... and each [n] opens its passage's page in a new tab.
    assert (
        '<a href="https://x/start#ports" target="_blank" rel="noopener noreferrer" class="dqa-cite" '
        'title="docs/start.md — Start &gt; Ports">[1]</a>'
    ) in shown
    assert '<a href="https://x/tags" target="_blank"' in shown
    # A link of the answer's own opens in a new tab too: followed in place, it leaves the task.
    assert '<a href="https://x/guide" target="_blank" rel="noopener noreferrer">the guide</a>' in shown
    sources = task.data["sources_html"]
    assert "Cited by the answer (2)" in sources
    assert (
        '<a href="https://x/start#ports" target="_blank" rel="noopener noreferrer">docs/start.md' in sources
    )
    assert "“Set <strong>port</strong> under <code>server</code>.”" in sources  # the quoted lines
    # What was found and not cited is there too, folded: "wrong passages" needs it.
    folded = sources.split("<details>")[1]
    assert "Also given to the model, not cited (1)" in folded and "docs/install.md — Install" in folded
    assert task.data["answer"] == MARKDOWN_ANSWER  # the plain text stays, for columns and exports


def test_a_reply_that_found_the_docs_silent_says_no_model_wrote_it(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    silent = "The docs don't seem to cover this. I searched for “how do I **bold** it?”."
    closest = [{"n": 1, "source": "docs/auth.md", "section": "SSO", "score": 0.31, "url": "https://x/sso"}]
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = answer(
            log, answer=silent, cited=[], retrieved=closest, prompt_version="abstain-v2", model=""
        )
        log.rate(exchange_id, "bad", comment="SAML SSO covers it")
        assert SyncWorker(log, ls_settings).flush().created == 1
    (task,) = label_studio.tasks(ls_settings.label_studio_project)
    assert task.data["hints"] == SILENT_HINT  # not "no model pre-rated this answer", as if one could have
    assert "no model wrote this reply" in task.data["sources_html"]
    assert "Cited by the answer" not in task.data["sources_html"]
    assert '<a href="https://x/sso" target="_blank"' in task.data["sources_html"]
    # The reply quotes the user's question: shown exactly as typed, never as Markdown.
    assert "“how do I **bold** it?”" in task.data["answer_html"]


def test_a_new_project_gives_reviewers_instructions_and_tabs_to_start_from(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        liked, disliked, flagged = answer(log, 1), answer(log, 2), answer(log, 3)
        silent = answer(log, 4, answer="The docs don't cover this.", cited=[], prompt_version="abstain-v2")
        log.set_pre_rating(flagged, "bad", "The excerpts say -p.", model="judge")
        for exchange_id, rating in ((liked, "good"), (disliked, "bad"), (flagged, "good"), (silent, "bad")):
            log.rate(exchange_id, rating)
        assert SyncWorker(log, ls_settings).flush().created == 4
        client = label_studio.client()
        project_id = label_studio.project_id(ls_settings.label_studio_project)
        project = client.projects.get(id=project_id)
        assert project.show_instruction and "key <b>2</b>" in (project.expert_instruction or "")
        assert (project.show_skip_button, project.enable_empty_annotation) == (True, False)

        views = {v.data["title"]: v for v in client.views.list(project=project_id)}
        assert list(views) == [title for title, *_ in REVIEW_VIEWS]

        def listed(title: str) -> set[str]:
            return {
                t.data["exchange_id"] for t in client.tasks.list(project=project_id, view=views[title].id)
            }

        assert listed("To review") == {liked, disliked, flagged, silent}
        assert listed("Thumbs down") == {disliked, silent}
        assert listed("Pre-rated Bad") == {flagged}
        assert listed("Docs silent") == {silent}
        assert listed("Reviewed") == set()
        # A reviewer judges one: it leaves the queues for Reviewed, and its verdict reaches the app.
        (task,) = [
            t
            for t in label_studio.tasks(ls_settings.label_studio_project)
            if t.data["exchange_id"] == flagged
        ]
        bad = [{"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Bad"]}}]
        client.annotations.create(id=task.id, result=bad)
        assert (listed("To review"), listed("Pre-rated Bad"), listed("Reviewed")) == (
            {liked, disliked, silent},
            set(),
            {flagged},
        )
        assert SyncWorker(log, ls_settings).flush().pulled == 1
        assert log.get(flagged).reviewer_rating == "bad"  # type: ignore[union-attr]
        # Rows show the answer at a glance: every other key of the task data is a hidden column.
        hidden = set(views["To review"].data["hiddenColumns"]["explore"])
        shown = {f"tasks:data.{key}" for key in task.data} - hidden
        assert shown == {f"tasks:data.{k}" for k in ("question", "answer", "user_feedback", "pre_rating")}
        assert "tasks:data" in hidden  # the whole data as JSON

        # A tab reviewers deleted is not forced back on them by the next connect.
        client.views.delete(id=str(views["Docs silent"].id))
        LabelStudioProject.connect(label_studio.url, label_studio.token, ls_settings.label_studio_project)
        assert "Docs silent" not in {v.data["title"] for v in client.views.list(project=project_id)}


def test_a_project_of_the_version_before_is_upgraded_to_the_rendered_view_with_its_tabs(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    client = label_studio.client()
    title = ls_settings.label_studio_project
    old = client.projects.create(title=title, label_config=PREVIOUS_LABEL_CONFIGS[-1])
    assert old.id is not None
    data = {
        "exchange_id": "before",
        "question": "q",
        "answer": "Run:\n\n```bash\nlabel-studio start \\\n    -p 9000\n```\n\nSee [1].",
        "sources": "[1] docs/start.md — Start",
        "cited": [{"n": 1, "source": "docs/start.md", "section": "Start", "url": "https://x/start"}],
        "retrieved": [{"n": 1, "source": "docs/start.md", "section": "Start", "url": "https://x/start"}],
        "user_feedback": "Bad 👎 (no comment)",
        "hints": NO_HINTS,
    }
    first = {  # a task of the first version, through the earlier backfills: its sources are text only
        "exchange_id": "first",
        "question": "q",
        "answer": "<b>a</b>",
        "sources": "[1] a.md\n[2] b.md",
        "user_feedback": "Good 👍 (no comment)",
        "hints": OLD_TASK_HINTS,
    }
    before, first_version = client.projects.import_tasks(
        id=old.id, request=[{"data": data}, {"data": first}], return_task_ids=True
    ).task_ids
    # A reviewer's verdict on the old view, with what was wrong: its tags must survive the upgrade.
    problems = {
        "from_name": "problems",
        "to_name": "answer",
        "type": "choices",
        "value": {"choices": ["Incomplete"]},
    }
    bad = {"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Bad"]}}
    client.annotations.create(id=before, result=[bad, problems])
    client.views.create(
        project=old.id, data={"title": "Mine", "filters": {"conjunction": "and", "items": []}}
    )

    LabelStudioProject.connect(label_studio.url, label_studio.token, title)

    project = client.projects.get(id=old.id)
    assert project.label_config.strip() == LABEL_CONFIG.strip()  # upgraded in place
    assert project.show_instruction and project.expert_instruction
    assert [v.data["title"] for v in client.views.list(project=old.id)] == [
        "Mine",  # the reviewers' own tab stays, first
        *(title for title, *_ in REVIEW_VIEWS),
    ]
    # Its earlier tasks now show the rendered answer and linked sources, from their own data.
    task = client.tasks.get(id=before)
    assert (
        '<pre><code class="language-bash">label-studio start \\\n    -p 9000\n</code></pre>'
        in task.data["answer_html"]
    )
    assert '<a href="https://x/start" target="_blank"' in task.data["sources_html"]
    assert [r["from_name"] for r in task.annotations[0]["result"]] == ["rating", "problems"]
    task = client.tasks.get(id=first_version)
    assert "&lt;b&gt;a&lt;/b&gt;" in task.data["answer_html"]
    assert '<div class="dqa-literal">[1] a.md\n[2] b.md</div>' in task.data["sources_html"]
    # Once done, the next connect changes nothing.
    updated = [client.tasks.get(id=i).updated_at for i in (before, first_version)]
    LabelStudioProject.connect(label_studio.url, label_studio.token, title)
    assert [client.tasks.get(id=i).updated_at for i in (before, first_version)] == updated
    assert len(client.views.list(project=old.id)) == 1 + len(REVIEW_VIEWS)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A page of Debian's chromium, headless, with a fresh profile."""
    sync_api = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    args += ["--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            headless=True,
            args=args,
            viewport={"width": 1440, "height": 900},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_a_reviewer_reads_and_judges_an_answer_in_label_studio_and_the_app_hears_it(
    ls_settings: Settings, label_studio: LabelStudioServer, browser_page: Any
) -> None:
    page = browser_page
    long_answer = MARKDOWN_ANSWER + "\n\n" + "\n\n".join(f"Step {n}: more detail." for n in range(60))
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = reviewed_answer(log, answer=long_answer)
        log.rate(exchange_id, "good")
        worker = SyncWorker(log, ls_settings)
        assert worker.flush().created == 1
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        project_id = label_studio.project_id(ls_settings.label_studio_project)

        credentials = (label_studio.data_dir / "labelstudio" / "credentials").read_text()
        password = credentials.split("LABEL_STUDIO_PASSWORD=")[1].split()[0]
        page.goto(f"{label_studio.url}/user/login/")
        page.fill("input[name=email]", "admin@example.com")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url)
        page.goto(f"{label_studio.url}/projects/{project_id}/data?task={task.id}")
        code = page.locator(".dqa-answer pre")
        code.wait_for(timeout=30_000)

        # The answer as its author wrote it: code indented, HTML as text, [n] opening the docs.
        assert code.inner_text().rstrip() == "server:\n  port: 9000"
        assert code.evaluate("element => getComputedStyle(element).fontFamily").endswith("monospace")
        assert '<Choice value="A"/>' in page.locator(".dqa-answer").inner_text()
        assert page.locator(".dqa-answer img, .dqa-answer script").count() == 0
        cite = page.locator(".dqa-answer a.dqa-cite").first
        assert (cite.inner_text(), cite.get_attribute("target")) == ("[1]", "_blank")
        assert page.locator(".dqa-html a[href='https://x/tags']").count() == 2  # cited in the text and listed
        # The verdict stays in view while the long answer scrolls under it.
        page.locator(".lsf-main-content").evaluate("element => { element.scrollTop = 2000 }")
        page.wait_for_timeout(300)
        verdict = page.get_by_text("Your verdict", exact=False).bounding_box()
        assert verdict is not None and 0 <= verdict["y"] <= 900

        # Keys: 2 is Bad (the user's Good was pre-selected), 5 ticks "Incomplete"; the comment is typed.
        page.keyboard.press("2")
        page.keyboard.press("5")
        page.locator("textarea").fill("It never says where the config file lives")
        page.get_by_role("button", name="Submit").click()
        wait_for(lambda: label_studio.tasks(ls_settings.label_studio_project)[0].annotations, timeout=15)

        assert worker.flush().pulled == 1
        exchange = log.get(exchange_id)
        assert exchange is not None
        assert (exchange.user_rating, exchange.reviewer_rating, exchange.verdict) == ("good", "bad", "bad")
        assert exchange.reviewer_problems == ("incomplete",)
        assert exchange.reviewer_comment == "It never says where the config file lives"
        assert exchange.reviewer == "admin@example.com"
