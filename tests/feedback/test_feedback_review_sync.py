"""Verdicts given in the app's Review tab reach a real Label Studio as annotations, once."""

from __future__ import annotations

import io
import json
import sqlite3

from fastapi import FastAPI
from feedback_testkit import LabelStudioServer, UvicornThread, answer, free_port, user_predictions, wait_for

from feedback import FeedbackLog, SyncWorker, webhook_router
from feedback.export import export
from feedback.migrations import MIGRATIONS
from feedback.records import PROBLEMS
from feedback.review_task import USER_MODEL_VERSION
from settings import Settings

BAD = [
    {"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Bad"]}},
    {"from_name": "comment", "to_name": "answer", "type": "textarea", "value": {"text": ["Port flag is -p"]}},
]


def choice(annotation: dict) -> tuple[str, str]:
    """(Good/Bad, comment) of an annotation as Label Studio lists it."""
    rating = comment = ""
    for item in annotation["result"]:
        if item["from_name"] == "rating":
            rating = item["value"]["choices"][0]
        if item["from_name"] == "comment":
            comment = "\n".join(item["value"]["text"])
    return rating, comment


def by_exchange(label_studio: LabelStudioServer, settings: Settings) -> dict:
    return {t.data["exchange_id"]: t for t in label_studio.tasks(settings.label_studio_project)}


def reviewer_rows(log: FeedbackLog, exchange_id: str) -> list[tuple]:
    return [
        (e.source, e.rating, e.comment, e.deleted) for e in log.history(exchange_id) if e.kind == "reviewer"
    ]


def reviewed_pair(log: FeedbackLog, comment: str, reviewer: str) -> tuple[str, str]:
    """Two answers reviewed in the Review tab: one a user liked (reviewer: bad), one nobody rated (good)."""
    thumbed, unrated = answer(log, 1), answer(log, 2)
    log.rate(thumbed, "good")
    log.review(thumbed, "bad", comment, reviewer=reviewer)
    log.review(unrated, "good", reviewer=reviewer)
    return thumbed, unrated


def test_a_review_tab_verdict_becomes_an_annotation_on_the_answers_task(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        thumbed, unrated = reviewed_pair(log, "It is -p, not --port", "app reviewer")
        assert log.pending_count() == 3 and log.get(unrated).sync == "pending"  # type: ignore[union-attr]

        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and (report.created, report.reviews, report.pending) == (2, 2, 0), report
        tasks = by_exchange(label_studio, ls_settings)
        assert set(tasks) == {thumbed, unrated}
        me = label_studio.client().users.whoami()

        (annotation,) = tasks[thumbed].annotations
        assert choice(annotation) == ("Bad", "It is -p, not --port")
        assert annotation["completed_by"] == me.id  # made with the app's API key
        # The answer no user rated got a task of its own: no user prediction, and it says why.
        (annotation,) = tasks[unrated].annotations
        assert choice(annotation) == ("Good", "")
        assert tasks[unrated].data["user_feedback"].startswith("No thumb: the user did not rate")
        assert tasks[unrated].data["user_rating"] is None
        assert not [p for p in tasks[unrated].predictions if p["model_version"] == USER_MODEL_VERSION]

        # The pull reads both annotations back as the verdicts they are: nothing new, nothing renamed.
        assert SyncWorker(log, ls_settings).flush().pulled == 0
        assert reviewer_rows(log, thumbed) == [("inline", "bad", "It is -p, not --port", False)]
        exchange = log.get(thumbed)
        assert exchange is not None
        assert (exchange.reviewer, exchange.verdict, exchange.sync) == ("app reviewer", "bad", "delivered")
        status = SyncWorker(log, ls_settings).status()
        assert (status.pending, status.delivered) == (0, 2)

        # A changed verdict rewrites the same annotation.
        log.review(thumbed, "good", "", reviewer="app reviewer")
        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and (report.created, report.reviews, report.pulled) == (0, 1, 0), report
        (annotation,) = by_exchange(label_studio, ls_settings)[thumbed].annotations
        assert choice(annotation) == ("Good", "")
        assert log.get(thumbed).reviewer_rating == "good"  # type: ignore[union-attr]


def test_the_task_of_an_answer_only_a_reviewer_rated_gets_a_pre_rating_that_comes_later(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = answer(log)
        log.review(exchange_id, "good", reviewer="app reviewer")  # no thumb: the verdict makes the task
        worker = SyncWorker(log, ls_settings)
        assert worker.flush(pull=False).created == 1
        assert by_exchange(label_studio, ls_settings)[exchange_id].data["pre_rating"] == ""

        log.set_pre_rating(exchange_id, "bad", "The excerpts say -p, not --port.", model="judge-model")
        assert log.pending_count() == 1 and log.get(exchange_id).sync == "pending"  # type: ignore[union-attr]
        report = worker.flush(pull=False)
        assert report.ok and (report.created, report.updated, report.reviews) == (0, 1, 0), report
        task = by_exchange(label_studio, ls_settings)[exchange_id]
        assert task.data["hints"] == "Pre-rated Bad by judge-model: The excerpts say -p, not --port."
        assert (task.data["pre_rating"], task.data["user_rating"]) == ("bad", None)
        assert not user_predictions(task)  # still no thumb
        (annotation,) = task.annotations
        assert choice(annotation) == ("Good", "")  # the reviewer's verdict stands
        assert log.pending_count() == 0 and log.get(exchange_id).sync == "delivered"  # type: ignore[union-attr]

        log.rate(exchange_id, "bad")  # a thumb after all: the same task, now with the user's prediction
        assert worker.flush(pull=False).updated == 1
        task = by_exchange(label_studio, ls_settings)[exchange_id]
        assert task.data["user_rating"] == "bad" and task.data["pre_rating"] == "bad"
        assert len(user_predictions(task)) == 1


def test_a_reviewer_who_edits_or_deletes_that_annotation_in_label_studio_changes_the_verdict(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    app = FastAPI()
    calls: list[str] = []

    @app.middleware("http")
    async def count(request, call_next):  # noqa: ANN001, ANN202 - which webhooks came, to wait for them
        calls.append(request.url.path)
        return await call_next(request)

    with FeedbackLog(ls_settings.feedback_db) as log:
        app.include_router(webhook_router(log, ls_settings))
        port = int(ls_settings.app_url.rsplit(":", 1)[1])
        with UvicornThread(app, port):
            exchange_id = answer(log)
            log.rate(exchange_id, "bad")
            log.review(exchange_id, "good", "fine", reviewer="app reviewer")
            worker = SyncWorker(log, ls_settings)
            assert worker.flush(pull=False).reviews == 1
            # Label Studio tells the webhook about the annotation the app made: its own echo.
            wait_for(lambda: calls, timeout=10)
            assert reviewer_rows(log, exchange_id) == [("inline", "good", "fine", False)]

            client = label_studio.client()
            (annotation,) = by_exchange(label_studio, ls_settings)[exchange_id].annotations
            client.annotations.update(id=annotation["id"], result=BAD)  # a reviewer disagrees there
            wait_for(lambda: log.get(exchange_id).reviewer_rating == "bad", timeout=10)  # type: ignore[union-attr]
            assert log.get(exchange_id).reviewer_comment == "Port flag is -p"  # type: ignore[union-attr]

            client.annotations.delete(id=annotation["id"])
            exchange = wait_for(
                lambda: (e := log.get(exchange_id)) and e.reviewer_rating is None and e, timeout=10
            )
            assert (exchange.verdict, exchange.verdict_source) == ("bad", "user")  # the user's thumb again
            assert [(s, r, d) for s, r, _, d in reviewer_rows(log, exchange_id)] == [
                ("inline", "good", False),
                ("webhook", "bad", False),
                ("webhook", None, True),
            ]

            # A new verdict in the app makes a new annotation: the deleted one stays deleted.
            log.review(exchange_id, "good", reviewer="app reviewer")
            report = worker.flush()
            assert report.ok and report.reviews == 1, report
            (again,) = by_exchange(label_studio, ls_settings)[exchange_id].annotations
            assert again["id"] != annotation["id"] and choice(again) == ("Good", "")
            assert log.get(exchange_id).reviewer_rating == "good"  # type: ignore[union-attr]
            assert worker.flush().pulled == 0


def test_an_annotation_whose_answer_was_lost_is_found_not_made_twice(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = answer(log)
        log.review(exchange_id, "bad", "outdated", reviewer="app reviewer")
        worker = SyncWorker(log, ls_settings)
        assert worker.flush().reviews == 1
        # The crash window: Label Studio has task and annotation, the log forgot both.
        db = sqlite3.connect(log.path)
        with db:
            db.execute("UPDATE outbox SET task_id = NULL, verify = 1")
            db.execute("UPDATE review_outbox SET annotation_id = NULL, delivered = 0, verify = 1")
            db.execute("UPDATE ratings SET annotation_id = NULL WHERE source = 'inline'")
        db.close()
        report = worker.flush()
        assert report.ok and (report.created, report.reviews, report.pulled) == (0, 1, 0), report
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        (annotation,) = task.annotations
        assert choice(annotation) == ("Bad", "outdated")
        assert reviewer_rows(log, exchange_id) == [("inline", "bad", "outdated", False)]


def test_verdicts_given_before_this_version_are_queued_for_label_studio(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "feedback.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for fn in MIGRATIONS:
        if fn.__name__ == "m006_review_outbox":
            break
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, '2026-11-01')", (fn.__name__,))
    db.execute("INSERT INTO exchanges (id, time, question, answer) VALUES ('e1', '2026-11-01', 'q', 'a')")
    db.execute(
        "INSERT INTO ratings (exchange_id, time, kind, source, rating, comment, reviewer)"
        " VALUES ('e1', '2026-11-01', 'reviewer', 'inline', 'bad', 'old', 'ana')"
    )
    db.close()
    with FeedbackLog(path) as log:
        (due,) = log.due_reviews()
        assert (due.exchange.id, due.rating, due.comment, due.annotation_id) == ("e1", "bad", "old", None)
        assert log.get("e1").sync == "pending"  # type: ignore[union-attr]


def test_a_task_deleted_in_label_studio_is_made_again_for_a_changed_verdict(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = answer(log)
        log.review(exchange_id, "good", reviewer="app reviewer")
        worker = SyncWorker(log, ls_settings)
        assert worker.flush(pull=False).reviews == 1
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        (first,) = task.annotations
        label_studio.client().tasks.delete(id=str(task.id))
        assert not label_studio.tasks(ls_settings.label_studio_project)

        log.review(exchange_id, "bad", "the page moved", reviewer="app reviewer")
        report = worker.flush(pull=False)
        assert report.ok and (report.created, report.reviews) == (1, 1), report
        (again,) = label_studio.tasks(ls_settings.label_studio_project)
        assert again.data["exchange_id"] == exchange_id  # (Label Studio may reuse the deleted task's id)
        (annotation,) = again.annotations
        assert annotation["id"] != first["id"] and choice(annotation) == ("Bad", "the page moved")
        assert log.get(exchange_id).task_id == again.id  # type: ignore[union-attr]


def test_with_label_studio_unreachable_a_verdict_waits_and_arrives_once_it_answers(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    down = ls_settings.model_copy(update={"label_studio_url": f"http://127.0.0.1:{free_port()}"})
    with FeedbackLog(ls_settings.feedback_db) as log:
        exchange_id = answer(log)
        log.review(exchange_id, "bad", "outdated", reviewer="ana")
        report = SyncWorker(log, down).flush()
        assert not report.ok and "not reachable" in report.error and report.pending == 1
        assert log.get(exchange_id).reviewer_rating == "bad"  # type: ignore[union-attr]

        report = SyncWorker(log, ls_settings).flush()
        assert report.ok and (report.created, report.reviews, report.pending) == (1, 1, 0), report
        (task,) = label_studio.tasks(ls_settings.label_studio_project)
        (annotation,) = task.annotations
        assert choice(annotation) == ("Bad", "outdated")


def test_a_deleted_project_gets_the_verdicts_again_and_they_stay_the_apps(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    with FeedbackLog(ls_settings.feedback_db) as log:
        thumbed, unrated = reviewed_pair(log, "wrong page", "ana")
        worker = SyncWorker(log, ls_settings)
        assert worker.flush().reviews == 2
        label_studio.client().projects.delete(id=label_studio.project_id(ls_settings.label_studio_project))

        worker.flush()  # meets the 404: set up again on the next cycle
        report = worker.flush()
        assert report.ok and (report.created, report.carried, report.reviews) == (2, 2, 0), report
        tasks = by_exchange(label_studio, ls_settings)
        assert choice(tasks[thumbed].annotations[0]) == ("Bad", "wrong page")
        assert choice(tasks[unrated].annotations[0]) == ("Good", "")
        assert worker.flush().pulled == 0  # the new project's annotations are the same verdicts
        for exchange_id, rating in ((thumbed, "bad"), (unrated, "good")):
            exchange = log.get(exchange_id)
            assert exchange is not None
            assert (exchange.reviewer_rating, exchange.reviewer) == (rating, "ana")
        assert [e.source for e in log.history(thumbed) if e.kind == "reviewer"] == ["inline"]


def test_a_deleted_or_changed_project_keeps_the_verdicts_reviewers_gave_in_label_studio(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    """A project gone is no reviewer taking verdicts back: they are made again in the new one."""
    app = FastAPI()
    with FeedbackLog(ls_settings.feedback_db) as log:
        app.include_router(webhook_router(log, ls_settings))
        with UvicornThread(app, int(ls_settings.app_url.rsplit(":", 1)[1])):  # the app hears its echoes
            ids = [answer(log, n) for n in range(3)]
            for exchange_id in ids:
                log.rate(exchange_id, "good")
            worker = SyncWorker(log, ls_settings)
            assert worker.flush().created == 3
            client = label_studio.client()
            tasks = by_exchange(label_studio, ls_settings)
            incomplete = {"from_name": "problems", "to_name": "answer", "type": "choices"}
            incomplete["value"] = {"choices": [PROBLEMS["incomplete"]]}
            client.annotations.create(id=tasks[ids[0]].id, result=[*BAD, incomplete])
            client.annotations.create(id=tasks[ids[1]].id, result=[BAD[0] | {"value": {"choices": ["Good"]}}])
            client.annotations.create(id=tasks[ids[2]].id, result=BAD)
            worker.flush()  # the reviewers' names
            # The session's Label Studio has one user, the app key's: let other reviewers have given these.
            db = sqlite3.connect(log.path)
            with db:
                for n, exchange_id in enumerate(ids):
                    db.execute(
                        "UPDATE ratings SET reviewer = ? WHERE exchange_id = ? AND kind = 'reviewer'",
                        (f"reviewer{n}@example.com", exchange_id),
                    )
            db.close()
            reviewed = [log.get(i) for i in ids]
            verdicts = [
                (e.reviewer_rating, e.reviewer_comment, e.reviewer_problems, e.reviewer) for e in reviewed
            ]
            assert [v[0] for v in verdicts] == ["bad", "good", "bad"] and verdicts[0][2] == ("incomplete",)
            assert [v[3] for v in verdicts] == [f"reviewer{n}@example.com" for n in range(3)]
            rows = {i: reviewer_rows(log, i) for i in ids}

            client.projects.delete(id=label_studio.project_id(ls_settings.label_studio_project))
            assert "404" in worker.flush().error  # said, then set up again on the next cycle
            report = worker.flush()
            assert report.ok and (report.created, report.carried, report.pulled, report.pending) == (
                3,
                3,
                0,
                0,
            )

            tasks = by_exchange(label_studio, ls_settings)  # the new project's
            for exchange_id, (rating, comment, _, _) in zip(ids, verdicts, strict=True):
                (annotation,) = tasks[exchange_id].annotations
                assert choice(annotation) == (rating.capitalize(), comment)
            (annotation,) = tasks[ids[0]].annotations
            assert [r["value"]["choices"] for r in annotation["result"] if r["from_name"] == "problems"] == [
                [PROBLEMS["incomplete"]]
            ]
            assert worker.flush().pulled == 0  # the same verdicts, read back by pull and by webhook
            assert {i: reviewer_rows(log, i) for i in ids} == rows  # no "deleted", no copy
            now = [log.get(i) for i in ids]
            assert [
                (e.reviewer_rating, e.reviewer_comment, e.reviewer_problems, e.reviewer) for e in now
            ] == verdicts
            assert log.counts()["reviewed"] == 3 and log.accuracy()[0].good == 1
            out = io.StringIO()
            assert export(log, "openai-finetune", out) == 1  # the approved answer only, never a rejected one
            assert json.loads(out.getvalue())["messages"][0]["content"] == reviewed[1].standalone_question

            # Another project set (LABEL_STUDIO_PROJECT): the same, and the old one keeps its annotations.
            moved = ls_settings.model_copy(
                update={"label_studio_project": ls_settings.label_studio_project + " b"}
            )
            report = SyncWorker(log, moved).flush()
            assert report.ok and (report.created, report.carried, report.pulled) == (3, 3, 0), report
            assert all(len(t.annotations) == 1 for t in by_exchange(label_studio, moved).values())
            assert all(len(t.annotations) == 1 for t in by_exchange(label_studio, ls_settings).values())
            assert {i: reviewer_rows(log, i) for i in ids} == rows

            # A reviewer who deletes a verdict inside the project in use still takes it back.
            worker = SyncWorker(log, moved)
            (annotation,) = by_exchange(label_studio, moved)[ids[0]].annotations
            client.annotations.delete(id=annotation["id"])
            worker.flush()
            exchange = log.get(ids[0])
            assert exchange is not None and exchange.reviewer_rating is None
            assert (exchange.verdict, exchange.verdict_source) == ("good", "user")
            assert reviewer_rows(log, ids[0])[-1][1:] == (None, "", True)  # withdrawn


def test_switching_projects_and_back_takes_the_reviewers_annotations_back_without_copies(
    ls_settings: Settings, label_studio: LabelStudioServer
) -> None:
    """LABEL_STUDIO_PROJECT set to B, then back to A: A's tasks keep one annotation each, the reviewer's."""
    with FeedbackLog(ls_settings.feedback_db) as log:
        ids = [answer(log, n) for n in range(2)]
        for exchange_id in ids:
            log.rate(exchange_id, "good")
        worker = SyncWorker(log, ls_settings)
        assert worker.flush().created == 2
        client = label_studio.client()
        tasks = by_exchange(label_studio, ls_settings)
        first = client.annotations.create(id=tasks[ids[0]].id, result=BAD)  # a reviewer in project A
        client.annotations.create(id=tasks[ids[1]].id, result=[BAD[0] | {"value": {"choices": ["Good"]}}])
        worker.flush()
        rows = {i: reviewer_rows(log, i) for i in ids}
        other = ls_settings.model_copy(
            update={"label_studio_project": ls_settings.label_studio_project + " b"}
        )
        assert SyncWorker(log, other).flush().carried == 2

        back = SyncWorker(log, ls_settings).flush()

        assert back.ok and back.carried == 2, back
        tasks = by_exchange(label_studio, ls_settings)
        assert [len(tasks[i].annotations) for i in ids] == [1, 1]  # not the reviewer's and a copy
        assert tasks[ids[0]].annotations[0]["id"] == first.id
        assert {i: reviewer_rows(log, i) for i in ids} == rows
        assert [log.get(i).reviewer_rating for i in ids] == ["bad", "good"]  # type: ignore[union-attr]
        # It is that verdict's annotation again: the reviewer who edits it in A changes the verdict.
        client.annotations.update(id=first.id, result=[BAD[0] | {"value": {"choices": ["Good"]}}])
        assert SyncWorker(log, ls_settings).flush().pulled == 1
        assert log.get(ids[0]).reviewer_rating == "good"  # type: ignore[union-attr]
        assert len(by_exchange(label_studio, other)[ids[0]].annotations) == 1
