"""Reviewers' verdicts come back from a real Label Studio: by webhook, and by pull when it is missed."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from feedback_testkit import LabelStudioServer, UvicornThread, answer, free_port, wait_for

from feedback import FeedbackLog, SyncWorker, webhook_router
from feedback.config import webhook_secret
from feedback.labelstudio import parse_annotation
from settings import Settings

BAD = [
    {"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Bad"]}},
    {"from_name": "comment", "to_name": "answer", "type": "textarea", "value": {"text": ["Port flag is -p"]}},
]
GOOD = [{"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Good"]}}]


def app_port(settings: Settings) -> int:
    return int(settings.app_url.rsplit(":", 1)[1])


def serve(log: FeedbackLog, settings: Settings, on_verdict=None) -> UvicornThread:  # noqa: ANN001
    app = FastAPI()
    app.include_router(webhook_router(log, settings, on_verdict=on_verdict))
    return UvicornThread(app, app_port(settings))


def deliver(
    log: FeedbackLog, settings: Settings, label_studio: LabelStudioServer, rating: str = "good"
) -> tuple:
    exchange_id = answer(log)
    log.rate(exchange_id, rating)
    assert SyncWorker(log, settings).flush(pull=False).created == 1
    (task,) = label_studio.tasks(settings.label_studio_project)
    return exchange_id, task.id


def test_an_annotation_reaches_the_app_by_webhook(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log, serve(log, ls_settings):
        exchange_id, task_id = deliver(log, ls_settings, label_studio)
        assert SyncWorker(log, ls_settings).status().webhook == ls_settings.app_url + "/webhooks/label-studio"
        client = label_studio.client()

        annotation = client.annotations.create(id=task_id, result=BAD)
        exchange = wait_for(lambda: (e := log.get(exchange_id)) and e.reviewer_rating and e, timeout=10)
        assert (exchange.reviewer_rating, exchange.reviewer_comment) == ("bad", "Port flag is -p")
        assert (exchange.reviewer_source, exchange.user_rating, exchange.verdict) == (
            "webhook",
            "good",
            "bad",
        )

        client.annotations.update(id=annotation.id, result=GOOD)
        wait_for(lambda: log.get(exchange_id).reviewer_rating == "good", timeout=10)

        client.annotations.delete(id=annotation.id)
        exchange = wait_for(
            lambda: (e := log.get(exchange_id)) and e.reviewer_rating is None and e, timeout=10
        )
        assert (exchange.verdict, exchange.verdict_source) == ("good", "user")  # back to the user's thumbs
        reviewer_events = [e for e in log.history(exchange_id) if e.kind == "reviewer"]
        assert [(e.source, e.rating, e.deleted) for e in reviewer_events] == [
            ("webhook", "bad", False),
            ("webhook", "good", False),
            ("webhook", None, True),
        ]


def test_with_the_endpoint_down_the_annotation_arrives_by_pull(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:  # nothing serves PUBLIC_URL: webhooks fail
        exchange_id, task_id = deliver(log, ls_settings, label_studio, rating="good")
        client = label_studio.client()
        annotation = client.annotations.create(id=task_id, result=BAD)
        assert log.get(exchange_id).reviewer_rating is None  # type: ignore[union-attr]

        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and report.pulled == 1, report
        exchange = log.get(exchange_id)
        assert exchange is not None
        assert (exchange.reviewer_rating, exchange.reviewer_source, exchange.verdict) == (
            "bad",
            "pull",
            "bad",
        )
        assert SyncWorker(log, ls_settings).flush().pulled == 0  # idempotent

        client.annotations.delete(id=annotation.id)
        assert SyncWorker(log, ls_settings).flush().pulled == 1
        assert log.get(exchange_id).verdict == "good"  # type: ignore[union-attr]


def test_the_background_worker_pulls_periodically(
    ls_settings: Settings, label_studio: LabelStudioServer, make_worker
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id, task_id = deliver(log, ls_settings, label_studio)
        make_worker(log, ls_settings, pull_interval=0.5).start()
        label_studio.client().annotations.create(id=task_id, result=BAD)
        wait_for(lambda: log.get(exchange_id).reviewer_rating == "bad", timeout=20)


def test_a_request_without_the_secret_gets_401_and_changes_nothing(
    local_settings: Settings, monkeypatch
) -> None:
    port = free_port()
    settings = local_settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    with FeedbackLog(settings.feedback_db) as log, serve(log, settings):
        exchange_id = answer(log)
        log.rate(exchange_id, "good")
        url = f"http://127.0.0.1:{port}/webhooks/label-studio"
        payload = {
            "action": "ANNOTATION_CREATED",
            "annotation": {"id": 99, "task": 5, "result": BAD},
            "task": {"id": 5, "data": {"exchange_id": exchange_id}},
            "project": {"id": 1, "token": "a-project-token-that-must-never-be-logged"},
        }
        before = log.history(exchange_id)
        assert httpx.post(url, json=payload).status_code == 401
        assert httpx.post(url, json=payload, headers={"X-Webhook-Secret": "guess"}).status_code == 401
        assert httpx.post(url, json=payload, params={"secret": ""}).status_code == 401
        assert httpx.post(url, content=b"not json").status_code == 401  # the secret is checked first
        assert log.history(exchange_id) == before
        assert log.get(exchange_id).verdict == "good"  # type: ignore[union-attr]

        secret = webhook_secret(settings)
        response = httpx.post(url, json=payload, params={"secret": secret})  # secret in the URL works too
        assert response.status_code == 200 and response.json()["stored"] == 1
        assert log.get(exchange_id).verdict == "bad"  # type: ignore[union-attr]
        bad_body = httpx.post(url, content=b"not json", headers={"X-Webhook-Secret": secret})
        assert bad_body.status_code == 400


def test_known_verdicts_from_label_studio_give_known_accuracy(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        thumbs = ["good", "good", "good", "bad", "bad"]
        ids = [answer(log, n) for n in range(len(thumbs))]
        for exchange_id, rating in zip(ids, thumbs, strict=True):
            log.rate(exchange_id, rating)
        worker = SyncWorker(log, ls_settings)
        assert worker.flush(pull=False).created == 5
        task_of = {t.data["exchange_id"]: t.id for t in label_studio.tasks(ls_settings.label_studio_project)}
        client = label_studio.client()
        for exchange_id, result in ((ids[0], BAD), (ids[1], BAD), (ids[3], GOOD)):
            client.annotations.create(id=task_of[exchange_id], result=result)
        assert worker.flush().pulled == 3

        (overall,) = log.accuracy()
        assert (overall.rated, overall.good, overall.accuracy) == (5, 2, 0.4)  # verdicts: b b g g b
        assert (overall.reviewed, overall.reviewer_good) == (3, 1)
        assert (overall.user_rated, overall.user_good) == (5, 3)
        assert [e.id for e in log.recent(verdict="good")] == [ids[3], ids[2]]


def test_reviewer_comments_are_stripped_and_reviewers_named_readably(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log, serve(log, ls_settings):
        exchange_id, task_id = deliver(log, ls_settings, label_studio)
        client = label_studio.client()
        typed = [BAD[0], {**BAD[1], "value": {"text": ["Port flag is -p\n"]}}]  # the Enter that submits
        annotation = client.annotations.create(id=task_id, result=typed)

        exchange = wait_for(lambda: (e := log.get(exchange_id)) and e.reviewer_rating and e, timeout=10)
        assert exchange.reviewer_comment == "Port flag is -p"
        assert exchange.reviewer == "1"  # the webhook payload carries only Label Studio's user id

        # The pull sees the same annotation with the reviewer's name: a rename, not a new verdict.
        assert SyncWorker(log, ls_settings).flush().pulled == 0
        exchange = log.get(exchange_id)
        assert exchange is not None
        assert (exchange.reviewer, exchange.reviewer_comment) == ("admin@example.com", "Port flag is -p")
        assert len([e for e in log.history(exchange_id) if e.kind == "reviewer"]) == 1

        # A later change by webhook (id only again) keeps the name.
        client.annotations.update(id=annotation.id, result=GOOD)
        wait_for(lambda: log.get(exchange_id).reviewer_rating == "good", timeout=10)
        assert log.get(exchange_id).reviewer == "admin@example.com"  # type: ignore[union-attr]

        # Every shape Label Studio gives an annotation in names the same person.
        (listed,) = label_studio.tasks(ls_settings.label_studio_project)[0].annotations  # created_username
        (single,) = client.tasks.get(id=str(task_id)).annotations  # completed_by as the user
        assert parse_annotation(listed).reviewer == parse_annotation(single).reviewer == "admin@example.com"


def test_a_webhook_verdicts_reviewer_is_named_within_seconds_not_at_the_next_pull(
    ls_settings: Settings, label_studio: LabelStudioServer, make_worker
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id, task_id = deliver(log, ls_settings, label_studio)
        worker = make_worker(log, ls_settings, pull_interval=3600)  # the periodic pull won't come
        worker.start()
        wait_for(lambda: log.get_state().get("last_pull_at"), timeout=20)  # its first pull, at start
        with serve(log, ls_settings, on_verdict=worker.pull_soon):
            label_studio.client().annotations.create(id=task_id, result=BAD)
            exchange = wait_for(lambda: (e := log.get(exchange_id)) and e.reviewer_rating and e, timeout=10)
            assert exchange.reviewer_source == "webhook"
            named = wait_for(
                lambda: (e := log.get(exchange_id)) and e.reviewer == "admin@example.com" and e, timeout=15
            )
            assert (named.reviewer_rating, named.reviewer_comment) == ("bad", "Port flag is -p")
            assert len([e for e in log.history(exchange_id) if e.kind == "reviewer"]) == 1
