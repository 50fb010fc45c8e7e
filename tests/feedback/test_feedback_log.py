"""The local feedback log: what the chat writes, what reports read. No Label Studio needed."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from feedback_testkit import answer

from feedback import FeedbackLog, SyncWorker, UnknownExchangeError
from feedback.export import export
from feedback.migrations import MIGRATIONS


def test_an_answer_is_logged_with_everything_reports_need(feedback_log: FeedbackLog) -> None:
    exchange_id = answer(feedback_log)
    exchange = feedback_log.get(exchange_id)
    assert exchange is not None
    assert exchange.question.startswith("How do I start Label Studio")
    assert exchange.standalone_question.startswith("How to start")
    assert exchange.cited == [
        {
            "source": "docs/start.md",
            "section": "Start > Ports",
            "score": 0.91,
            "url": "https://x/start#ports",
            "quote": "Use `label-studio start -p 9000` to serve it on another port.",
        }
    ]
    assert [c["source"] for c in exchange.retrieved] == ["docs/start.md", "docs/install.md"]
    assert (exchange.prompt_version, exchange.model, exchange.docs_commit, exchange.latency_ms) == (
        "v1",
        "fake-model",
        "abc123",
        850,
    )
    assert exchange.verdict is None and exchange.sync == "local"


def test_the_log_is_sqlite_in_wal_mode_with_numbered_migrations(feedback_log: FeedbackLog) -> None:
    db = sqlite3.connect(feedback_log.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == sorted(fn.__name__ for fn in MIGRATIONS)
    assert all(name[:1] == "m" and name[1:4].isdigit() for name in applied)
    # Opening it again applies nothing twice.
    FeedbackLog(feedback_log.path).close()
    assert db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def test_last_rating_wins_and_history_is_kept(feedback_log: FeedbackLog) -> None:
    exchange_id = answer(feedback_log)
    feedback_log.rate(exchange_id, "bad")
    feedback_log.set_comment(exchange_id, "It is -p, not --port-number")
    feedback_log.rate(exchange_id, "good")  # changed their mind; the comment stays
    exchange = feedback_log.get(exchange_id)
    assert exchange is not None
    assert (exchange.user_rating, exchange.user_comment) == ("good", "It is -p, not --port-number")
    assert [(e.rating, e.comment) for e in feedback_log.history(exchange_id)] == [
        ("bad", ""),
        ("bad", "It is -p, not --port-number"),
        ("good", "It is -p, not --port-number"),
    ]
    feedback_log.rate(exchange_id, "good", comment="")
    assert feedback_log.get(exchange_id).user_comment == ""  # type: ignore[union-attr]


def test_a_rating_is_committed_before_rate_returns(feedback_log: FeedbackLog) -> None:
    exchange_id = answer(feedback_log)
    feedback_log.rate(exchange_id, "bad", "wrong")
    # Another connection (another process, after a crash) sees it at once.
    other = sqlite3.connect(feedback_log.path)
    assert other.execute(
        "SELECT rating, comment FROM ratings WHERE exchange_id = ?", (exchange_id,)
    ).fetchall() == [("bad", "wrong")]


def test_bad_input_gets_a_clear_error_and_changes_nothing(feedback_log: FeedbackLog) -> None:
    exchange_id = answer(feedback_log)
    with pytest.raises(ValueError, match="rating must be 'good' or 'bad'"):
        feedback_log.rate(exchange_id, "meh")
    with pytest.raises(UnknownExchangeError, match="record_exchange"):
        feedback_log.rate("no-such-id", "good")
    with pytest.raises(ValueError, match="before commenting"):
        feedback_log.set_comment(exchange_id, "a comment without thumbs")
    with pytest.raises(ValueError, match="--since must be a date"):
        feedback_log.recent(since="last tuesday")
    assert feedback_log.history(exchange_id) == []
    assert feedback_log.pending_count() == 0


def test_fifty_concurrent_ratings_all_land(feedback_log: FeedbackLog) -> None:
    ids = [answer(feedback_log, n) for n in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        events = list(pool.map(lambda i: feedback_log.rate(i, "good" if ids.index(i) % 2 else "bad"), ids))
    assert len({e.id for e in events}) == 50
    assert feedback_log.counts()["rated"] == 50
    assert feedback_log.pending_count() == 50  # each queued once for Label Studio


def test_reviewer_verdict_wins_over_the_users_thumbs_and_both_are_kept(feedback_log: FeedbackLog) -> None:
    exchange_id = answer(feedback_log)
    feedback_log.rate(exchange_id, "good")
    feedback_log.review(exchange_id, "bad", "cites the wrong page", reviewer="ana", source="inline")
    exchange = feedback_log.get(exchange_id)
    assert exchange is not None
    assert (exchange.verdict, exchange.verdict_source) == ("bad", "reviewer")
    assert (exchange.user_rating, exchange.reviewer_rating) == ("good", "bad")
    assert exchange.reviewer_comment == "cites the wrong page"


def test_the_same_annotation_seen_twice_is_stored_once_and_deletion_withdraws_it(
    feedback_log: FeedbackLog,
) -> None:
    exchange_id = answer(feedback_log)
    assert feedback_log.review(exchange_id, "bad", "x", source="webhook", annotation_id=7)
    assert feedback_log.review(exchange_id, "bad", "x", source="pull", annotation_id=7) is None
    assert feedback_log.get(exchange_id).verdict == "bad"  # type: ignore[union-attr]
    assert feedback_log.review(exchange_id, None, source="webhook", annotation_id=7, deleted=True)
    assert feedback_log.get(exchange_id).verdict is None  # type: ignore[union-attr]
    assert feedback_log.review(exchange_id, None, source="pull", annotation_id=7, deleted=True) is None


def test_the_reviewed_answers_and_a_stamp_that_moves_with_every_verdict(feedback_log: FeedbackLog) -> None:
    thumbed, judged, withdrawn = (answer(feedback_log, n) for n in range(3))
    feedback_log.rate(thumbed, "good")  # a user's thumb is no reviewer's verdict
    stamps = [feedback_log.reviews_stamp()]
    feedback_log.review(judged, "good", "right", reviewer="ana", source="inline")
    feedback_log.review(withdrawn, "bad", "x", source="webhook", annotation_id=9)
    stamps.append(feedback_log.reviews_stamp())
    assert [e.id for e in feedback_log.reviewed()] == [judged, withdrawn]
    feedback_log.review(withdrawn, None, source="webhook", annotation_id=9, deleted=True)
    stamps.append(feedback_log.reviews_stamp())
    assert [(e.id, e.reviewer_rating, e.reviewer) for e in feedback_log.reviewed()] == [
        (judged, "good", "ana")
    ]
    feedback_log.rate(thumbed, "bad")
    assert feedback_log.reviews_stamp() == stamps[-1]  # thumbs don't move it
    assert stamps[0] < stamps[1] < stamps[2]


def test_an_answer_that_reused_a_verdict_says_so_and_the_report_compares_them(
    feedback_log: FeedbackLog,
) -> None:
    first = answer(feedback_log)
    feedback_log.review(first, "bad", "wrong flag", reviewer="ana", source="inline")
    again = answer(feedback_log, 1, reused_from=first, reused_verdict="bad")
    feedback_log.rate(again, "good")
    assert (feedback_log.get(again).reused_from, feedback_log.get(again).reused_verdict) == (first, "bad")
    assert feedback_log.get(first).reused_from is None
    rows = {r.key: (r.rated, r.good) for r in feedback_log.accuracy(by="reused")}
    assert rows == {"no verdict reused": (1, 0), "rejected answer reused": (1, 1)}

    # ranked with what approved answers to similar questions cited: a group of its own
    feedback_log.review(again, "good", "", reviewer="ana", source="inline")
    helped = answer(feedback_log, 2, helped_by=[again])
    feedback_log.rate(helped, "good")
    assert feedback_log.get(helped).helped_by == [again] and feedback_log.get(first).helped_by == []
    rows = {r.key: (r.rated, r.good) for r in feedback_log.accuracy(by="reused")}
    assert rows["similar approved answers lifted"] == (1, 1)

    # ... and ranked without what answers to them, rejected for wrong passages, cited: another
    lowered = answer(feedback_log, 3, lowered_by=[first])
    feedback_log.rate(lowered, "bad")
    assert feedback_log.get(lowered).lowered_by == [first] and feedback_log.get(helped).lowered_by == []
    rows = {r.key: (r.rated, r.good) for r in feedback_log.accuracy(by="reused")}
    assert rows["similar rejections lowered"] == (1, 0)


def test_an_inline_verdict_is_queued_and_its_annotation_read_back_is_not_a_second_verdict(
    feedback_log: FeedbackLog,
) -> None:
    exchange_id = answer(feedback_log)
    event = feedback_log.review(exchange_id, "bad", " outdated\n", reviewer="ana", source="inline")
    assert event is not None
    (due,) = feedback_log.due_reviews()
    assert (due.wanted, due.rating, due.comment, due.annotation_id) == (event.id, "bad", "outdated", None)
    assert feedback_log.review(exchange_id, "bad", "outdated", reviewer="ana") is None  # saved twice: once
    # Label Studio's webhook may bring the annotation before the sync worker has noted its id.
    echo = dict(source="webhook", annotation_id=41, import_id=event.id, reviewer="1")
    assert feedback_log.review(exchange_id, "bad", "outdated", **echo) is None
    feedback_log.mark_review_delivered(exchange_id, event.id, annotation_id=41, task_id=9)
    assert feedback_log.due_reviews() == [] and feedback_log.get(exchange_id).sync == "delivered"  # type: ignore[union-attr]
    # Read back by the pull, named after the API key's user: still the one verdict, still ana's.
    assert (
        feedback_log.review(exchange_id, "bad", "outdated", source="pull", annotation_id=41, reviewer="admin")
        is None
    )
    assert feedback_log.get(exchange_id).reviewer == "ana"  # type: ignore[union-attr]
    # Changed in Label Studio: a new verdict of that annotation; deleted there: withdrawn.
    assert feedback_log.review(exchange_id, "good", "", source="pull", annotation_id=41, reviewer="bo")
    assert feedback_log.get(exchange_id).reviewer_rating == "good"  # type: ignore[union-attr]
    assert feedback_log.review(exchange_id, None, source="webhook", annotation_id=41, deleted=True)
    assert feedback_log.get(exchange_id).reviewer_rating is None  # type: ignore[union-attr]
    # The next inline verdict is queued again, for the same annotation (the sync finds it gone).
    again = feedback_log.review(exchange_id, "good", "ok", reviewer="ana")
    assert again is not None
    (due,) = feedback_log.due_reviews()
    assert (due.wanted, due.annotation_id) == (again.id, 41)


def test_known_verdicts_give_known_accuracy(feedback_log: FeedbackLog) -> None:
    def rated(n: int, thumbs: str, reviewer: str | None, day: str, prompt: str, model: str) -> None:
        exchange_id = answer(
            feedback_log, n, time=f"{day}T10:00:00.000+00:00", prompt_version=prompt, model=model
        )
        feedback_log.rate(exchange_id, thumbs)
        if reviewer:
            feedback_log.review(exchange_id, reviewer, source="inline")

    rated(1, "good", None, "2026-11-01", "v1", "a")  # user good
    rated(2, "good", "bad", "2026-11-01", "v1", "a")  # reviewer overrides: bad
    rated(3, "bad", None, "2026-11-02", "v2", "b")  # user bad
    rated(4, "bad", "good", "2026-11-02", "v2", "b")  # reviewer overrides: good
    answer(feedback_log, 5, time="2026-11-02T11:00:00.000+00:00")  # never rated: not counted

    (overall,) = feedback_log.accuracy()
    assert (overall.rated, overall.good, overall.accuracy) == (4, 2, 0.5)
    assert (overall.reviewed, overall.reviewer_accuracy) == (2, 0.5)
    assert (overall.user_rated, overall.user_accuracy) == (4, 0.5)
    by_day = {r.key: (r.rated, r.good) for r in feedback_log.accuracy("day")}
    assert by_day == {"2026-11-01": (2, 1), "2026-11-02": (2, 1)}
    by_prompt = {r.key: r.reviewer_accuracy for r in feedback_log.accuracy("prompt_version")}
    assert by_prompt == {"v1": 0.0, "v2": 1.0}
    by_model = {r.key: r.user_accuracy for r in feedback_log.accuracy("model")}
    assert by_model == {"a": 1.0, "b": 0.0}
    (recent,) = feedback_log.accuracy(since="2026-11-02")
    assert (recent.rated, recent.good) == (2, 1)


def test_recent_filters_by_verdict(feedback_log: FeedbackLog) -> None:
    good, bad, unrated = answer(feedback_log, 1), answer(feedback_log, 2), answer(feedback_log, 3)
    feedback_log.rate(good, "good")
    feedback_log.rate(bad, "bad")
    assert [e.id for e in feedback_log.recent(verdict="good")] == [good]
    assert [e.id for e in feedback_log.recent(verdict="bad")] == [bad]
    assert [e.id for e in feedback_log.recent(verdict="unrated")] == [unrated]
    assert [e.id for e in feedback_log.recent()] == [unrated, bad, good]  # newest first


def test_export_formats(feedback_log: FeedbackLog) -> None:
    good = answer(feedback_log, 1, time="2026-11-01T10:00:00.000+00:00")
    bad = answer(feedback_log, 2, time="2026-11-03T10:00:00.000+00:00")
    feedback_log.rate(good, "good")
    feedback_log.rate(bad, "bad", "wrong")

    out = io.StringIO()
    assert export(feedback_log, "csv", out) == 2
    header, *rows = out.getvalue().splitlines()
    assert header.startswith("id,time,session,question")
    assert len(rows) == 2

    out = io.StringIO()
    assert export(feedback_log, "jsonl", out, verdict="bad") == 1
    record = json.loads(out.getvalue())
    assert (record["id"], record["user_comment"], record["cited"][0]["source"]) == (
        bad,
        "wrong",
        "docs/start.md",
    )

    out = io.StringIO()
    assert export(feedback_log, "openai-finetune", out) == 1
    assert json.loads(out.getvalue()) == {
        "messages": [
            {"role": "user", "content": "How to start Label Studio on a different port (1)"},  # as answered
            {"role": "assistant", "content": "Run `label-studio start -p 9000` [1]."},
        ]
    }
    assert export(feedback_log, "jsonl", io.StringIO(), since="2026-11-02") == 1
    follow_up = feedback_log.record_exchange(
        question="and in YOLO?",
        standalone_question="How do I export rectangles in YOLO format?",
        answer="Choose YOLO in the export dialog [1].",
    )
    feedback_log.rate(follow_up, "good")
    out = io.StringIO()
    assert export(feedback_log, "openai-finetune", out) == 2
    last = json.loads(out.getvalue().splitlines()[-1])["messages"]
    assert last[0] == {
        "role": "user",
        "content": "How do I export rectangles in YOLO format?",
    }  # not "and in YOLO?"
    with pytest.raises(ValueError, match="good answers only"):
        export(feedback_log, "openai-finetune", io.StringIO(), verdict="bad")


def test_the_finetune_export_leaves_out_the_docs_dont_cover_this_replies_rated_good(
    feedback_log: FeedbackLog,
) -> None:
    """A false abstention a user liked must not teach a model to refuse; the other formats keep it."""
    silent = "I couldn't find this in the docs: they don't seem to cover it. The closest files I looked at: …"
    written = answer(feedback_log, 1)
    refused = answer(feedback_log, 2, answer=silent, cited=[], prompt_version="abstain-v2", model="")
    approved = answer(feedback_log, 3, answer=silent, cited=[], prompt_version="abstain-v1", model="")
    feedback_log.rate(written, "good")
    feedback_log.rate(refused, "good")
    feedback_log.review(approved, "good", reviewer="ana")  # even a reviewer's approval: not a model's answer
    assert [feedback_log.get(i).abstained for i in (written, refused, approved)] == [False, True, True]  # type: ignore[union-attr]

    out = io.StringIO()
    assert export(feedback_log, "openai-finetune", out) == 1
    (example,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert example["messages"][1]["content"] == "Run `label-studio start -p 9000` [1]."
    assert export(feedback_log, "jsonl", io.StringIO(), verdict="good") == 3
    assert export(feedback_log, "csv", io.StringIO()) == 3


def test_without_label_studio_everything_works_locally_and_says_so(local_settings) -> None:
    with FeedbackLog(local_settings.feedback_db) as log:
        worker = SyncWorker(log, local_settings)
        worker.start()  # a no-op
        assert not worker.running
        exchange_id = answer(log)
        log.rate(exchange_id, "good")
        status = worker.status()
        assert not status.configured
        assert "kept locally only" in status.message
        report = worker.sync_once()
        assert not report.ok and "LABEL_STUDIO_URL" in report.error


def test_a_pre_rating_is_a_hint_that_the_report_measures_against_reviewers(feedback_log: FeedbackLog) -> None:
    log = feedback_log
    assert log.pre_rating_agreement().summary == "No answer is pre-rated yet (PRE_RATE)."
    flagged, approved, missed, waiting, plain = (answer(log, n) for n in range(5))
    log.set_pre_rating(flagged, "bad", "It says --port.", model="judge", prompt_version="judge-v1")
    log.set_pre_rating(approved, "good", "[1] says so.", model="judge")
    log.set_pre_rating(missed, "good", "Looks right.", model="judge")
    log.set_pre_rating(waiting, "bad", "No citation.", model="judge")
    with pytest.raises(UnknownExchangeError):
        log.set_pre_rating("nope", "bad", "x")

    assert (log.get(flagged).pre_rating, log.get(flagged).pre_rating_reason) == ("bad", "It says --port.")
    assert log.get(flagged).pre_rating_prompt == "judge-v1"
    assert log.get(flagged).verdict is None and log.counts()["rated"] == 0  # never a verdict
    assert [e.id for e in log.recent(0, flagged=True)] == [waiting, flagged]  # pre-rated bad, unreviewed
    for exchange_id, verdict in ((flagged, "bad"), (approved, "good"), (missed, "bad"), (plain, "good")):
        log.review(exchange_id, verdict, "", reviewer="ana", source="inline")
    assert [e.id for e in log.recent(0, flagged=True, verdict="unrated")] == [waiting]

    agreement = log.pre_rating_agreement()
    assert (agreement.pre_rated, agreement.compared, agreement.agreed) == (4, 3, 2)
    assert (agreement.flagged, agreement.flagged_right, agreement.missed, agreement.waiting) == (1, 1, 1, 1)
    assert agreement.summary == (
        "Pre-ratings agree with reviewers on 2 of 3 answers (67%); of 1 pre-rated Bad, reviewers rejected 1; "
        "1 pre-rated Good were rejected; 1 pre-rated Bad wait for a reviewer."
    )
    groups = {row.key: (row.rated, row.good) for row in log.accuracy("pre_rating")}
    assert groups == {"not pre-rated": (1, 1), "pre-rated bad": (1, 0), "pre-rated good": (2, 1)}
    row = next(csv.DictReader(io.StringIO(export_text(log))))
    assert {"pre_rating", "pre_rating_reason", "pre_rating_model", "pre_rating_prompt"} <= set(row)


def test_a_pre_rating_stored_while_its_task_was_being_sent_is_sent_after_it(
    feedback_log: FeedbackLog,
) -> None:
    log = feedback_log
    exchange_id = answer(log)
    log.rate(exchange_id, "good")
    (sending,) = log.due_deliveries()  # the sync worker took the task's data: no pre-rating yet
    log.set_pre_rating(exchange_id, "bad", "It says --port.", model="judge")
    log.mark_delivered(exchange_id, sending.wanted, 7, pre_rated_at=sending.exchange.pre_rated_at)

    (again,) = log.due_deliveries()  # due again: the next sync rewrites task 7 with the pre-rating
    assert (again.task_id, again.exchange.pre_rating) == (7, "bad")
    log.mark_delivered(exchange_id, again.wanted, 7, pre_rated_at=again.exchange.pre_rated_at)
    assert log.due_deliveries() == [] and log.get(exchange_id).sync == "delivered"
    log.set_pre_rating(exchange_id, "good", "On second thought.", model="judge")  # a later one: sent too
    assert [d.exchange.pre_rating for d in log.due_deliveries()] == ["good"]


def test_a_pre_rating_reaches_the_task_of_an_answer_no_user_rated_whenever_it_comes(
    feedback_log: FeedbackLog,
) -> None:
    log = feedback_log
    made, racing = answer(log), answer(log, 2)
    log.set_task(made, 7)  # a reviewer's verdict made its task; no thumb, so nothing was due
    assert log.due_deliveries() == []
    log.set_pre_rating(made, "bad", "It says --port.", model="judge")
    (due,) = log.due_deliveries()  # the task is rewritten with it: its data only, no rating
    assert (due.exchange.id, due.task_id, due.rating, due.comment) == (made, 7, None, "")
    log.mark_delivered(made, due.wanted, 7, pre_rated_at=due.exchange.pre_rated_at)
    assert log.due_deliveries() == [] and log.get(made).sync == "delivered"  # type: ignore[union-attr]

    # Pre-rated while its task was being made from data without it: not due while the task has no
    # id (a second one would be made), due once it has.
    shown = log.get(racing)
    assert shown is not None
    log.mark_task_verify(racing)
    log.set_pre_rating(racing, "good", "Excerpt [1] gives the flag.", model="judge")
    assert log.due_deliveries() == []
    log.set_task(racing, 9, pre_rated_at=shown.pre_rated_at)
    assert [(d.exchange.id, d.task_id) for d in log.due_deliveries()] == [(racing, 9)]


def export_text(log: FeedbackLog) -> str:
    out = io.StringIO()
    export(log, "csv", out)
    return out.getvalue()


def test_a_reviewer_says_what_was_wrong_and_the_report_counts_it(feedback_log: FeedbackLog) -> None:
    first, second, third = (answer(feedback_log, i) for i in range(3))
    feedback_log.review(first, "bad", problems=["Wrong passages: the sources don't answer it", "incomplete"])
    assert feedback_log.review(first, "bad", problems=["incomplete", "wrong_sources"]) is None  # the same
    feedback_log.review(second, "bad", problems=["wrong_sources"])
    feedback_log.review(third, "bad")  # no reason given
    assert feedback_log.get(first).reviewer_problems == ("wrong_sources", "incomplete")  # type: ignore[union-attr]
    counts = feedback_log.problems()
    assert (
        counts.rejected,
        counts.counts["wrong_sources"],
        counts.counts["incomplete"],
        counts.unexplained,
    ) == (
        3,
        2,
        1,
        1,
    )
    assert counts.summary == (
        "What was wrong with the 3 rejected answers: wrong passages 2; incomplete 1; 1 without a reason."
    )
    # An approval keeps no problems, and a rejection changed to one leaves the count.
    event = feedback_log.review(first, "good", problems=["incomplete"])
    assert event is not None and event.problems == ()
    assert feedback_log.problems().counts["wrong_sources"] == 1
    with pytest.raises(ValueError, match="unknown problem 'wrong': use wrong_sources, unsupported"):
        feedback_log.review(second, "bad", problems=["wrong"])
    assert feedback_log.get(second).reviewer_problems == ("wrong_sources",)  # type: ignore[union-attr]


def test_a_user_says_what_was_wrong_with_a_thumbs_down_in_their_words(feedback_log: FeedbackLog) -> None:
    exchange_id = answer(feedback_log)
    feedback_log.rate(exchange_id, "bad")
    feedback_log.set_comment(exchange_id, "It talks about Docker", ["Not what I asked", "incomplete"])
    exchange = feedback_log.get(exchange_id)
    assert exchange.user_problems == ("wrong_sources", "incomplete")  # type: ignore[union-attr]
    feedback_log.set_comment(exchange_id, None, ["unclear"])  # ticks alone keep the comment
    exchange = feedback_log.get(exchange_id)
    assert (exchange.user_comment, exchange.user_problems) == ("It talks about Docker", ("unclear",))  # type: ignore[union-attr]
    (due,) = feedback_log.due_deliveries()
    assert (due.rating, due.comment, due.problems) == ("bad", "It talks about Docker", ("unclear",))
    with pytest.raises(ValueError, match="a user cannot say 'should_abstain'"):
        feedback_log.set_comment(exchange_id, None, ["should_abstain"])  # a reviewer's call
    assert feedback_log.problems(by="user").summary == (
        "What users said was wrong, on 1 thumbs down no reviewer has judged yet: hard to understand 1."
    )
    feedback_log.rate(exchange_id, "good")  # changed their mind: nothing was wrong
    assert feedback_log.get(exchange_id).user_problems == ()  # type: ignore[union-attr]
    assert feedback_log.problems().rejected == 0  # the report counts reviewers' findings
    assert feedback_log.problems(by="user").rejected == 0
