"""The local feedback log: every answer, every rating, and what Label Studio has of them.

One SQLite file under DATA_DIR (WAL mode), schema from `feedback.migrations`.
This is the source of truth: Label Studio is a copy for reviewers, fed from the
`outbox` table by the background worker in `feedback.sync`, so a rating is safe
the moment `rate()` returns whether or not Label Studio is up.

Thread-safe: the Gradio app calls it from many worker threads. One connection
per `FeedbackLog`, guarded by a lock; writes are short `BEGIN IMMEDIATE`
transactions committed with `synchronous=FULL`, so a rating survives a crash or
power cut once the call returns. Other processes (the CLI) may open the same
file at the same time: WAL plus a busy timeout lets them take turns.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from feedback.migrations import immediate, migrate
from feedback.records import (
    PROBLEMS,
    USER_PROBLEMS,
    AccuracyRow,
    CarryDelivery,
    Delivery,
    Exchange,
    PreRatingAgreement,
    ProblemCounts,
    Rating,
    RatingEvent,
    ReviewDelivery,
    SyncStatus,
    Verdict,
    parse_problems,
    stored_problems,
)

__all__ = [
    "AccuracyRow",
    "CarryDelivery",
    "Delivery",
    "Exchange",
    "FeedbackLog",
    "PreRatingAgreement",
    "ProblemCounts",
    "Rating",
    "RatingEvent",
    "ReviewDelivery",
    "SyncStatus",
    "UnknownExchangeError",
    "Verdict",
]

log = logging.getLogger(__name__)

GroupBy = Literal["overall", "day", "prompt_version", "model", "reused", "pre_rating"]
REVIEW_SOURCES = ("webhook", "pull", "inline")


class UnknownExchangeError(KeyError):
    """A rating named an exchange the log has never seen."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_rating(value: object) -> Rating:
    """Accept 'good'/'bad' (and the thumbs' True/False, 'up'/'down', 'like'/'dislike')."""
    if value is True:
        return "good"
    if value is False:
        return "bad"
    text = str(value).strip().lower()
    if text in ("good", "up", "like", "liked", "thumbs_up", "+1"):
        return "good"
    if text in ("bad", "down", "dislike", "disliked", "thumbs_down", "-1"):
        return "bad"
    raise ValueError(f"rating must be 'good' or 'bad', got {value!r}")


def parse_since(value: str | datetime | None) -> str | None:
    """A lower bound on exchange time as the ISO text stored in the log (UTC).

    Accepts a date ('2026-11-01') or an ISO datetime with or without offset
    (naive means UTC).
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"--since must be a date like 2026-11-01 or an ISO time like 2026-11-01T09:30, got {value!r}"
            ) from None
    else:
        parsed = value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds")


def _where(*conditions: str, since: str | datetime | None = None) -> tuple[str, list[Any]]:
    """A WHERE clause of `conditions` and the exchange-time bound `since` (see `parse_since`), with its params."""
    parts, params = list(conditions), []
    bound = parse_since(since)
    if bound:
        parts.append("time >= ?")
        params.append(bound)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def _plain(chunk: object) -> dict[str, Any]:
    """A chunk as a JSON-ready dict: mappings, dataclasses and objects with `as_dict()`."""
    if isinstance(chunk, Mapping):
        return dict(chunk)
    as_dict = getattr(chunk, "as_dict", None)
    if callable(as_dict):
        return dict(as_dict())
    if is_dataclass(chunk) and not isinstance(chunk, type):
        return asdict(chunk)
    raise TypeError(
        f"chunks must be dicts like {{'source', 'section', 'score', 'url'}}, got {type(chunk).__name__}"
    )


_GROUP_KEYS: dict[str, str] = {
    "overall": "'all'",
    "day": "substr(time, 1, 10)",
    "prompt_version": "prompt_version",
    "model": "model",
    # answers given with a reviewer's verdict on an earlier answer to the same question, and the rest
    # or ranked with what approved answers to similar questions cited (`helped_by`), or without what
    # answers to them rejected for wrong passages cited (`lowered_by`)
    "reused": "CASE reused_verdict WHEN 'good' THEN 'approved answer reused'"
    " WHEN 'bad' THEN 'rejected answer reused'"
    " ELSE CASE WHEN helped_by IS NOT NULL THEN 'similar approved answers lifted'"
    " WHEN lowered_by IS NOT NULL THEN 'similar rejections lowered' ELSE 'no verdict reused' END"
    " END",
    # what a model pre-rated the answer (qa.judge): accuracy per pre-rating shows what it is worth
    "pre_rating": "CASE pre_rating WHEN 'good' THEN 'pre-rated good' WHEN 'bad' THEN 'pre-rated bad'"
    " ELSE 'not pre-rated' END",
}


class FeedbackLog:
    """The feedback log at `path` (created with its parent folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self._closed = False
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            migrate(self._db)

    # --- plumbing ---------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> FeedbackLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after each new rating is committed (the sync worker wakes on it)."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # a listener must never break a rating
                log.exception("feedback listener failed")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate(self._db) as db:
            yield db

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- exchanges ----------------------------------------------------------------
    def record_exchange(
        self,
        *,
        question: str,
        answer: str,
        session: str = "",
        standalone_question: str = "",
        retrieved: Sequence[object] = (),
        cited: Sequence[object] = (),
        prompt_version: str = "",
        model: str = "",
        docs_commit: str = "",
        latency_ms: float | None = None,
        exchange_id: str | None = None,
        time: str | None = None,
        reused_from: str | None = None,
        reused_verdict: Rating | None = None,
        helped_by: Sequence[str] = (),
        lowered_by: Sequence[str] = (),
    ) -> str:
        """Log an answer when it is given; returns its id (for the thumbs to rate later).

        `reused_from`/`reused_verdict`: the earlier exchange whose reviewer verdict the answer
        was given with (see `qa.precedents`), for the report's "reused" grouping; `helped_by`:
        the approved exchanges on similar questions whose cited passages it was ranked with;
        `lowered_by`: the exchanges on similar questions rejected for wrong passages whose cited
        passages it would otherwise have read.
        """
        exchange_id = exchange_id or str(uuid.uuid4())
        row = (
            exchange_id,
            time or now_iso(),
            session or "",
            question,
            standalone_question or "",
            answer,
            json.dumps([_plain(c) for c in retrieved], ensure_ascii=False),
            json.dumps([_plain(c) for c in cited], ensure_ascii=False),
            prompt_version or "",
            model or "",
            docs_commit or "",
            None if latency_ms is None else round(latency_ms),
            reused_from or None,
            parse_rating(reused_verdict) if reused_verdict else None,
            json.dumps(list(helped_by)) if helped_by else None,
            json.dumps(list(lowered_by)) if lowered_by else None,
        )
        with self._write() as db:
            db.execute(
                "INSERT INTO exchanges (id, time, session, question, standalone_question, answer,"
                " retrieved_json, cited_json, prompt_version, model, docs_commit, latency_ms,"
                " reused_from, reused_verdict, helped_by, lowered_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return exchange_id

    def has_exchange(self, exchange_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM exchanges WHERE id = ?", (exchange_id,)))

    def get(self, exchange_id: str) -> Exchange | None:
        rows = self._query("SELECT * FROM exchange_current WHERE id = ?", (exchange_id,))
        return Exchange.from_row(rows[0]) if rows else None

    def recent(
        self,
        limit: int = 50,
        *,
        verdict: Verdict | None = None,
        since: str | datetime | None = None,
        session: str | None = None,
        rated_only: bool = False,
        oldest_first: bool = False,
        flagged: bool = False,
    ) -> list[Exchange]:
        """Latest exchanges (newest first), optionally only those with a given current verdict.

        `flagged`: only answers a model pre-rated bad that no reviewer has judged yet.
        """
        sql, params = self._filter_sql(
            verdict=verdict, since=since, session=session, rated_only=rated_only, flagged=flagged
        )
        order = "ASC" if oldest_first else "DESC"
        sql += f" ORDER BY time {order}, seq {order}"
        if limit:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [Exchange.from_row(r) for r in self._query(sql, params)]

    def iter_exchanges(
        self, *, verdict: Verdict | None = None, since: str | datetime | None = None, rated_only: bool = False
    ) -> list[Exchange]:
        """All matching exchanges, oldest first (for exports)."""
        return self.recent(0, verdict=verdict, since=since, rated_only=rated_only, oldest_first=True)

    def reviewed(self) -> list[Exchange]:
        """Every exchange whose reviewer verdict stands (a withdrawn one does not), oldest verdict first."""
        sql = "SELECT * FROM exchange_current WHERE reviewer_rating IS NOT NULL ORDER BY reviewed_at, seq"
        return [Exchange.from_row(r) for r in self._query(sql)]

    def reviews_stamp(self) -> int:
        """A number that changes whenever a reviewer's verdict is given, changed or withdrawn.

        Every such event adds a row to `ratings` (a withdrawal too), so the latest
        reviewer row's id tells whether `reviewed()` needs reading again.
        """
        rows = self._query("SELECT COALESCE(MAX(id), 0) FROM ratings WHERE kind = 'reviewer'")
        return int(rows[0][0])

    def set_pre_rating(
        self, exchange_id: str, rating: Rating, reason: str, *, model: str = "", prompt_version: str = ""
    ) -> None:
        """Store a model's pre-rating of an answer (`qa.judge`): a hint for reviewers, never a verdict.

        Label Studio shows it in the task data: a task it already has is queued again, and
        the next sync rewrites that task with it. That includes the task of an answer only a
        reviewer rated (an outbox row with `wanted` 0): it is marked due with `delivered` -1.
        """
        with self._write() as db:
            self._require_exchange(db, exchange_id)
            db.execute(
                "UPDATE exchanges SET pre_rating = ?, pre_rating_reason = ?, pre_rating_model = ?,"
                " pre_rating_prompt = ?, pre_rated_at = ? WHERE id = ?",
                (parse_rating(rating), reason, model, prompt_version, now_iso(), exchange_id),
            )
            db.execute(
                "UPDATE outbox SET delivered = CASE WHEN wanted > 0 THEN 0 ELSE -1 END, next_attempt = 0"
                " WHERE exchange_id = ? AND delivered >= wanted AND (wanted > 0 OR task_id IS NOT NULL)",
                (exchange_id,),
            )
        self._notify()

    def pre_rating_agreement(self, *, since: str | datetime | None = None) -> PreRatingAgreement:
        """How the pre-ratings compare with reviewers' verdicts (answers with both), and how many wait."""
        where, params = _where("pre_rating IS NOT NULL", since=since)
        row = self._query(
            "SELECT COUNT(*) AS pre_rated, SUM(reviewer_rating IS NOT NULL) AS compared,"
            " SUM(reviewer_rating = pre_rating) AS agreed,"
            " SUM(pre_rating = 'bad' AND reviewer_rating IS NOT NULL) AS flagged,"
            " SUM(pre_rating = 'bad' AND reviewer_rating = 'bad') AS flagged_right,"
            " SUM(pre_rating = 'good' AND reviewer_rating = 'bad') AS missed,"
            " SUM(pre_rating = 'bad' AND reviewer_rating IS NULL) AS waiting"
            f" FROM exchange_current{where}",
            params,
        )[0]
        return PreRatingAgreement(**{key: int(value or 0) for key, value in dict(row).items()})

    @staticmethod
    def _filter_sql(
        *,
        verdict: str | None,
        since: str | datetime | None,
        session: str | None,
        rated_only: bool,
        flagged: bool = False,
    ) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if verdict in ("good", "bad"):
            where.append("verdict = ?")
            params.append(verdict)
        elif verdict == "unrated":
            where.append("verdict IS NULL")
        elif verdict not in (None, "", "all"):
            raise ValueError(f"verdict must be good, bad or unrated, got {verdict!r}")
        if rated_only:
            where.append("verdict IS NOT NULL")
        if flagged:
            where.append("pre_rating = 'bad' AND reviewer_rating IS NULL")
        if session:
            where.append("session = ?")
            params.append(session)
        clause, bound = _where(*where, since=since)
        return "SELECT * FROM exchange_current" + clause, params + bound

    # --- user ratings ---------------------------------------------------------------
    def rate(
        self,
        exchange_id: str,
        rating: Rating | bool | str,
        comment: str | None = None,
        problems: Sequence[str] | str | None = None,
    ) -> RatingEvent:
        """Record the asker's thumbs (last one wins, history kept); committed before it returns.

        `comment=None` keeps the comment given earlier, `""` clears it; `problems` (what was
        wrong, `USER_PROBLEMS` keys or labels) likewise, and are kept with a thumbs down only.
        """
        return self._rate_user(exchange_id, parse_rating(rating), comment, problems)

    def set_comment(
        self, exchange_id: str, comment: str | None, problems: Sequence[str] | str | None = None
    ) -> RatingEvent:
        """Attach the optional comment box's text (None keeps the earlier one) and what was
        wrong (`problems`, None keeps them) to the asker's current thumbs."""
        return self._rate_user(exchange_id, None, comment, problems)

    def _rate_user(
        self,
        exchange_id: str,
        rating: Rating | None,
        comment: str | None,
        problems: Sequence[str] | str | None,
    ) -> RatingEvent:
        """A new user rating row from the last one: `rating`, `comment`, `problems` None keep its.

        `rating=None` (a comment on the current thumb) needs a thumb given before.
        """
        with self._write() as db:
            self._require_exchange(db, exchange_id)
            previous = db.execute(
                "SELECT rating, comment, problems FROM ratings WHERE exchange_id = ? AND kind = 'user'"
                " ORDER BY id DESC LIMIT 1",
                (exchange_id,),
            ).fetchone()
            if rating is None:
                if previous is None:
                    raise ValueError(
                        f"exchange {exchange_id} has no thumbs up/down yet: "
                        "rate it (good or bad) before commenting"
                    )
                rating = previous["rating"]
            if comment is None:
                comment = previous["comment"] if previous else ""
            found = (
                (previous["problems"] if previous else "") if problems is None else _user_problems(problems)
            )
            event = self._insert_user_rating(
                db, exchange_id, rating, comment, found if rating == "bad" else ""
            )
        self._notify()
        return event

    def history(self, exchange_id: str) -> list[RatingEvent]:
        """Every rating event of an exchange, oldest first."""
        rows = self._query("SELECT * FROM ratings WHERE exchange_id = ? ORDER BY id", (exchange_id,))
        return [_event(r) for r in rows]

    @staticmethod
    def _require_exchange(db: sqlite3.Connection, exchange_id: str) -> None:
        if not db.execute("SELECT 1 FROM exchanges WHERE id = ?", (exchange_id,)).fetchone():
            raise UnknownExchangeError(
                f"no answer with id {exchange_id!r} in the feedback log: "
                "record_exchange() must log an answer before it can be rated"
            )

    @staticmethod
    def _insert_user_rating(
        db: sqlite3.Connection, exchange_id: str, rating: str, comment: str, problems: str = ""
    ) -> RatingEvent:
        stamp = now_iso()
        cur = db.execute(
            "INSERT INTO ratings (exchange_id, time, kind, source, rating, comment, problems)"
            " VALUES (?, ?, 'user', 'chat', ?, ?, ?)",
            (exchange_id, stamp, rating, comment, problems),
        )
        rating_id = cur.lastrowid
        assert rating_id is not None
        db.execute(
            "INSERT INTO outbox (exchange_id, wanted, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (exchange_id) DO UPDATE SET wanted = excluded.wanted, attempts = 0,"
            " next_attempt = 0, updated_at = excluded.updated_at",
            (exchange_id, rating_id, stamp),
        )
        return RatingEvent(rating_id, exchange_id, stamp, "user", "chat", rating, comment)  # type: ignore[arg-type]

    # --- reviewer verdicts -------------------------------------------------------------
    def review(
        self,
        exchange_id: str,
        verdict: Rating | bool | str | None,
        comment: str = "",
        *,
        reviewer: str = "",
        source: str = "inline",
        annotation_id: int | None = None,
        task_id: int | None = None,
        deleted: bool = False,
        import_id: int | None = None,
        problems: Sequence[str] | str = (),
    ) -> RatingEvent | None:
        """Record a reviewer's verdict; returns None when it changes nothing (idempotent).

        `problems`: what was wrong with a Bad answer (`PROBLEMS` keys or labels); kept
        only with a Bad verdict, since Label Studio hides the question for a Good one.

        Label Studio annotations (source 'webhook' or 'pull') are one stream per
        `annotation_id`, so the same annotation seen by webhook and again by pull is
        stored once. `deleted=True` withdraws that annotation's verdict.

        An inline verdict (the Review tab's) is queued for Label Studio, which gets it as
        an annotation whose `import_id` is the verdict's row id: that annotation coming
        back unchanged (`import_id` given) is our own echo, not a new verdict.
        """
        if source not in REVIEW_SOURCES:
            raise ValueError(f"source must be one of {', '.join(REVIEW_SOURCES)}, got {source!r}")
        value = None if verdict is None or deleted else parse_rating(verdict)
        # Stripped like Label Studio's copy of it (`parse_annotation`), so that copy matches.
        comment = "" if deleted else (comment or "").strip()
        found = ",".join(parse_problems(problems)) if value == "bad" else ""
        inline = source == "inline" and annotation_id is None
        with self._write() as db:
            self._require_exchange(db, exchange_id)
            if inline:
                last = self._inline_last(db, exchange_id)
            elif annotation_id is None:
                last = db.execute(
                    "SELECT * FROM ratings WHERE exchange_id = ? AND kind = 'reviewer'"
                    " AND annotation_id IS NULL ORDER BY id DESC LIMIT 1",
                    (exchange_id,),
                ).fetchone()
            else:
                last = db.execute(
                    "SELECT * FROM ratings WHERE annotation_id = ? AND kind = 'reviewer'"
                    " ORDER BY id DESC LIMIT 1",
                    (annotation_id,),
                ).fetchone()
            if last is None and deleted:
                return None  # never knew it: nothing to withdraw
            if (
                import_id is not None
                and not deleted
                and self._is_echo(db, exchange_id, import_id, value, comment, found)
            ):
                return None
            if (
                annotation_id is not None
                and last is not None
                # the app's copy of a Review-tab verdict, or of the verdict it carried into a new
                # project (made from that very row, and not edited since)
                and (last["source"] == "inline" or (import_id is not None and last["id"] == import_id))
                and not deleted
                and not last["deleted"]
                and (last["rating"], last["comment"], last["problems"]) == (value, comment, found)
            ):
                return None  # our own annotation read back (Label Studio names the token's owner)
            if annotation_id is not None and last is not None and not deleted:
                # One annotation has one annotator, but Label Studio names them only in some
                # payloads (a pull: "First Last email"; the webhook: the bare user id). Keep the
                # readable name: an id-only copy is no change, and a pull just renames the row.
                known = last["reviewer"] or ""
                if _readable(known) and not _readable(reviewer):
                    reviewer = known
                elif (
                    _readable(reviewer)
                    and reviewer != known
                    and not last["deleted"]
                    and (last["rating"], last["comment"], last["problems"]) == (value, comment, found)
                ):
                    db.execute("UPDATE ratings SET reviewer = ? WHERE id = ?", (reviewer, last["id"]))
                    return None
            if (
                last is not None
                and last["rating"] == value
                and last["comment"] == comment
                and last["problems"] == found
                and bool(last["deleted"]) == deleted
                and (deleted or last["reviewer"] == reviewer)
            ):
                return None
            stamp = now_iso()
            cur = db.execute(
                "INSERT INTO ratings (exchange_id, time, kind, source, rating, comment, reviewer,"
                " annotation_id, task_id, deleted, problems) VALUES (?, ?, 'reviewer', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    exchange_id,
                    stamp,
                    source,
                    value,
                    comment,
                    reviewer,
                    annotation_id,
                    task_id,
                    int(deleted),
                    found,
                ),
            )
            assert cur.lastrowid is not None
            if inline:
                db.execute(
                    "INSERT INTO review_outbox (exchange_id, wanted, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (exchange_id) DO UPDATE SET wanted = excluded.wanted, attempts = 0,"
                    " next_attempt = 0, updated_at = excluded.updated_at",
                    (exchange_id, cur.lastrowid, stamp),
                )
            event = RatingEvent(
                cur.lastrowid,
                exchange_id,
                stamp,
                "reviewer",
                source,
                value,
                comment,
                reviewer,  # type: ignore[arg-type]
                annotation_id,
                task_id,
                deleted,
                stored_problems(found),
            )
        if inline:
            self._notify()  # the sync worker sends it to Label Studio
        return event

    @staticmethod
    def _inline_last(db: sqlite3.Connection, exchange_id: str) -> sqlite3.Row | None:
        """The latest row of the exchange's inline verdict: not yet delivered, or in its annotation's stream."""
        return db.execute(
            "SELECT * FROM ratings WHERE exchange_id = ? AND kind = 'reviewer' AND ("
            " (annotation_id IS NULL AND source = 'inline')"
            " OR annotation_id = (SELECT annotation_id FROM review_outbox WHERE exchange_id = ?))"
            " ORDER BY id DESC LIMIT 1",
            (exchange_id, exchange_id),
        ).fetchone()

    @staticmethod
    def _is_echo(
        db: sqlite3.Connection,
        exchange_id: str,
        import_id: int,
        rating: str | None,
        comment: str,
        problems: str,
    ) -> bool:
        """An annotation made from verdict row `import_id` and unchanged since, before the row is
        part of that annotation's stream: an inline verdict before `mark_review_delivered`, or a
        carried one (`verdict_carry`) before `mark_carried`."""
        own = db.execute(
            "SELECT rating, comment, problems FROM ratings WHERE id = ? AND exchange_id = ? AND kind = 'reviewer'"
            " AND ((source = 'inline' AND annotation_id IS NULL)"
            " OR annotation_id IN (SELECT annotation_id FROM verdict_carry))",
            (import_id, exchange_id),
        ).fetchone()
        return own is not None and (own["rating"], own["comment"], own["problems"]) == (
            rating,
            comment,
            problems,
        )

    def annotation_exchange(self, annotation_id: int) -> str | None:
        """The exchange an annotation we have seen belongs to (deletions carry only its id)."""
        rows = self._query(
            "SELECT exchange_id FROM ratings WHERE annotation_id = ? ORDER BY id DESC LIMIT 1",
            (annotation_id,),
        )
        return rows[0]["exchange_id"] if rows else None

    def live_annotations(self, exchange_id: str) -> set[int]:
        """Annotation ids of this exchange whose latest state is not deleted, in the project in use.

        Those of a project left behind, whose verdicts wait to be made again in this one
        (`verdict_carry`), are not: the pull must not take their absence for a deletion.
        """
        rows = self._query(
            "SELECT annotation_id, deleted FROM ratings WHERE exchange_id = ? AND annotation_id IS NOT NULL"
            " AND annotation_id NOT IN (SELECT annotation_id FROM verdict_carry) ORDER BY id",
            (exchange_id,),
        )
        state: dict[int, bool] = {}
        for row in rows:
            state[row["annotation_id"]] = bool(row["deleted"])
        return {aid for aid, deleted in state.items() if not deleted}

    def task_exchange(self, task_id: int) -> str | None:
        rows = self._query("SELECT exchange_id FROM outbox WHERE task_id = ?", (task_id,))
        return rows[0]["exchange_id"] if rows else None

    # --- accuracy ---------------------------------------------------------------------
    def accuracy(self, by: GroupBy = "overall", *, since: str | datetime | None = None) -> list[AccuracyRow]:
        """good / rated per group; reviewer verdicts first, user thumbs where no reviewer looked.

        Also gives the reviewer-only and user-only figures so both can be shown.
        `overall` always returns one row, even with nothing rated.
        """
        if by not in _GROUP_KEYS:
            raise ValueError(f"accuracy can be grouped by {', '.join(_GROUP_KEYS)}, not {by!r}")
        key = _GROUP_KEYS[by]
        where, params = _where("verdict IS NOT NULL", since=since)
        rows = self._query(
            f"SELECT {key} AS key, COUNT(*) AS rated, SUM(verdict = 'good') AS good,"
            " SUM(reviewer_rating IS NOT NULL) AS reviewed, SUM(reviewer_rating = 'good') AS reviewer_good,"
            " SUM(user_rating IS NOT NULL) AS user_rated, SUM(user_rating = 'good') AS user_good"
            f" FROM exchange_current{where} GROUP BY 1 ORDER BY 1",
            params,
        )
        result = [
            AccuracyRow(
                key=str(r["key"]) if r["key"] not in (None, "") else "(none)",
                rated=r["rated"] or 0,
                good=r["good"] or 0,
                reviewed=r["reviewed"] or 0,
                reviewer_good=r["reviewer_good"] or 0,
                user_rated=r["user_rated"] or 0,
                user_good=r["user_good"] or 0,
            )
            for r in rows
        ]
        if by == "overall" and not result:
            result = [AccuracyRow("all", 0, 0, 0, 0, 0, 0)]
        return result

    def problems(
        self, *, since: str | datetime | None = None, by: Literal["reviewer", "user"] = "reviewer"
    ) -> ProblemCounts:
        """How often reviewers named each problem (`PROBLEMS`) among the answers they rejected.

        Current verdicts only, like `accuracy`: a rejection changed to an approval drops out.
        `by="user"`: what users ticked (`USER_PROBLEMS`) with the thumbs down no reviewer has
        judged yet, as accuracy counts a thumb where no reviewer looked.
        """
        condition = (
            "reviewer_rating = 'bad'"
            if by == "reviewer"
            else "user_rating = 'bad' AND reviewer_rating IS NULL"
        )
        column = f"{by}_problems"
        where, params = _where(condition, since=since)
        rows = self._query(f"SELECT {column} FROM exchange_current{where}", params)
        counts = dict.fromkeys(PROBLEMS if by == "reviewer" else USER_PROBLEMS, 0)
        unexplained = 0
        for row in rows:
            found = [k for k in stored_problems(row[column]) if k in counts]
            unexplained += not found
            for key in found:
                counts[key] += 1
        return ProblemCounts(len(rows), counts, unexplained, by)

    def counts(self) -> dict[str, int]:
        """Totals for a dashboard: exchanges, rated, reviewed."""
        row = self._query(
            "SELECT COUNT(*) AS exchanges, SUM(verdict IS NOT NULL) AS rated,"
            " SUM(reviewer_rating IS NOT NULL) AS reviewed FROM exchange_current"
        )[0]
        return {k: int(row[k] or 0) for k in ("exchanges", "rated", "reviewed")}

    # --- outbox (used by feedback.sync) ---------------------------------------------------
    def due_deliveries(self, limit: int = 100, now: float | None = None) -> list[Delivery]:
        """Pending deliveries whose retry time has come, oldest rating first.

        A task of an answer no user rated (`wanted` 0) comes first, with no rating: its data
        needs rewriting (a pre-rating came after it was made).
        """
        now = time.time() if now is None else now
        queued = self._queued(
            "SELECT o.wanted AS q_wanted, o.prediction_id AS q_prediction_id, o.verify AS q_verify,"
            " o.attempts AS q_attempts, r.rating AS q_rating, COALESCE(r.comment, '') AS q_comment,"
            " COALESCE(r.problems, '') AS q_problems, c.*"
            " FROM outbox o LEFT JOIN ratings r ON r.id = o.wanted"
            " JOIN exchange_current c ON c.id = o.exchange_id"
            " WHERE o.wanted > o.delivered AND o.next_attempt <= ? ORDER BY o.wanted LIMIT ?",
            (now, limit),
        )
        return [
            Delivery(
                exchange,
                q["wanted"],
                q["rating"],
                q["comment"],
                exchange.task_id,
                q["prediction_id"],
                bool(q["verify"]),
                q["attempts"],
                stored_problems(q["problems"]),
            )
            for exchange, q in queued
        ]

    def due_reviews(self, limit: int = 100, now: float | None = None) -> list[ReviewDelivery]:
        """Inline verdicts waiting for Label Studio whose retry time has come, oldest first."""
        now = time.time() if now is None else now
        queued = self._queued(
            "SELECT v.wanted AS q_wanted, v.annotation_id AS q_annotation_id, v.verify AS q_verify,"
            " v.attempts AS q_attempts, r.rating AS q_rating, r.comment AS q_comment,"
            " r.problems AS q_problems, c.*"
            " FROM review_outbox v JOIN ratings r ON r.id = v.wanted"
            " JOIN exchange_current c ON c.id = v.exchange_id"
            " WHERE v.wanted > v.delivered AND v.next_attempt <= ?"
            # its annotation is being made again in a new project first: the change goes into that one
            " AND NOT EXISTS (SELECT 1 FROM verdict_carry k WHERE k.annotation_id = v.annotation_id)"
            " ORDER BY v.wanted LIMIT ?",
            (now, limit),
        )
        return [
            ReviewDelivery(
                exchange,
                q["wanted"],
                q["rating"],
                q["comment"],
                q["annotation_id"],
                bool(q["verify"]),
                q["attempts"],
                stored_problems(q["problems"]),
            )
            for exchange, q in queued
        ]

    def _queued(self, sql: str, params: Sequence[Any]) -> list[tuple[Exchange, dict[str, Any]]]:
        """Outbox rows joined to `exchange_current`: each exchange, and the row's own columns (`q_…`)."""
        out = []
        for row in self._query(sql, params):
            data = dict(row)
            own = {key[2:]: data.pop(key) for key in list(data) if key.startswith("q_")}
            out.append((Exchange.from_row(data), own))
        return out

    def due_carries(self, limit: int = 100, now: float | None = None) -> list[CarryDelivery]:
        """Verdicts to make again in a new project whose retry time has come, oldest verdict first.

        A stream deleted meanwhile (a webhook from the project left behind) has nothing
        to carry: its row is dropped.
        """
        now = time.time() if now is None else now
        latest = "(SELECT MAX(id) FROM ratings WHERE annotation_id = k.annotation_id AND kind = 'reviewer')"
        with self._write() as db:
            db.execute(
                "DELETE FROM verdict_carry AS k WHERE NOT EXISTS (SELECT 1 FROM ratings r"
                f" WHERE r.id = {latest} AND r.deleted = 0 AND r.rating IS NOT NULL)"
            )
        queued = self._queued(
            "SELECT k.annotation_id AS q_annotation_id, k.attempts AS q_attempts,"
            " r.id AS q_row, r.rating AS q_rating, r.comment AS q_comment, r.problems AS q_problems, c.*"
            f" FROM verdict_carry k JOIN ratings r ON r.id = {latest}"
            " JOIN exchange_current c ON c.id = k.exchange_id"
            " WHERE k.next_attempt <= ? ORDER BY r.id LIMIT ?",
            (now, limit),
        )
        return [
            CarryDelivery(
                exchange,
                q["annotation_id"],
                q["row"],
                q["rating"],
                q["comment"],
                stored_problems(q["problems"]),
                q["attempts"],
            )
            for exchange, q in queued
        ]

    def stream_rows(self, annotation_id: int) -> set[int]:
        """Ids of the rows of one annotation's stream: the `import_id`s a copy of it may carry."""
        rows = self._query(
            "SELECT id FROM ratings WHERE annotation_id = ? AND kind = 'reviewer'", (annotation_id,)
        )
        return {row["id"] for row in rows}

    def mark_carried(self, annotation_id: int, new_annotation_id: int, task_id: int) -> None:
        """The verdict of annotation `annotation_id` is now annotation `new_annotation_id` of the
        new project: its stream moves there (and the Review tab's verdict with it, if it is one)."""
        with self._write() as db:
            db.execute(
                "UPDATE ratings SET annotation_id = ?, task_id = ? WHERE annotation_id = ? AND kind = 'reviewer'",
                (new_annotation_id, task_id, annotation_id),
            )
            db.execute(
                "UPDATE review_outbox SET annotation_id = ? WHERE annotation_id = ?",
                (new_annotation_id, annotation_id),
            )
            db.execute("DELETE FROM verdict_carry WHERE annotation_id = ?", (annotation_id,))

    def inline_verdict_ids(self, exchange_id: str) -> set[int]:
        """Ids of the exchange's inline verdict rows: the `import_id`s its annotation may carry."""
        rows = self._query(
            "SELECT id FROM ratings WHERE exchange_id = ? AND kind = 'reviewer' AND source = 'inline'",
            (exchange_id,),
        )
        return {row["id"] for row in rows}

    def mark_task_verify(self, exchange_id: str) -> None:
        """Before creating a task for an answer no user rated: a retry must look it up first."""
        with self._write() as db:
            db.execute(
                "INSERT INTO outbox (exchange_id, wanted, verify, updated_at) VALUES (?, 0, 1, ?)"
                " ON CONFLICT (exchange_id) DO UPDATE SET verify = 1",
                (exchange_id, now_iso()),
            )

    def mark_review_verify(self, exchange_id: str) -> None:
        """Before creating the annotation: a retry must look for it first (committed before the call)."""
        with self._write() as db:
            db.execute("UPDATE review_outbox SET verify = 1 WHERE exchange_id = ?", (exchange_id,))

    def mark_review_delivered(self, exchange_id: str, wanted: int, annotation_id: int, task_id: int) -> None:
        """Label Studio's annotation `annotation_id` now carries inline verdict `wanted`.

        The inline rows up to it join that annotation's stream, so its webhook and pull
        copies are the same verdict, and an edit or deletion in Label Studio changes it.
        """
        with self._write() as db:
            db.execute(
                "UPDATE ratings SET annotation_id = ?, task_id = ? WHERE exchange_id = ? AND kind = 'reviewer'"
                " AND source = 'inline' AND annotation_id IS NULL AND id <= ?",
                (annotation_id, task_id, exchange_id, wanted),
            )
            db.execute(
                "UPDATE review_outbox SET delivered = MAX(delivered, ?), annotation_id = ?, verify = 0,"
                " attempts = 0, next_attempt = 0, last_error = '', updated_at = ? WHERE exchange_id = ?",
                (wanted, annotation_id, now_iso(), exchange_id),
            )

    def pending_count(self) -> int:
        """Changes waiting for Label Studio: ratings, inline verdicts, tasks to rewrite with a pre-rating,
        verdicts to make again in a new project."""
        return int(
            self._query(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE wanted > delivered)"
                " + (SELECT COUNT(*) FROM review_outbox WHERE wanted > delivered)"
                " + (SELECT COUNT(*) FROM verdict_carry) AS n"
            )[0]["n"]
        )

    def next_due_in(self, now: float | None = None) -> float | None:
        """Seconds until the earliest pending delivery may be retried (None: nothing pending)."""
        now = time.time() if now is None else now
        row = self._query(
            "SELECT MIN(next_attempt) AS t FROM (SELECT next_attempt FROM outbox WHERE wanted > delivered"
            " UNION ALL SELECT next_attempt FROM review_outbox WHERE wanted > delivered"
            " UNION ALL SELECT next_attempt FROM verdict_carry)"
        )[0]
        return None if row["t"] is None else max(0.0, row["t"] - now)

    def mark_verify(self, exchange_ids: Sequence[str], verify: bool = True) -> None:
        """Before creating tasks: a retry must first look these up in Label Studio.

        `verify=False` when the call provably never reached Label Studio.
        """
        with self._write() as db:
            db.executemany(
                "UPDATE outbox SET verify = ? WHERE exchange_id = ?", [(int(verify), e) for e in exchange_ids]
            )

    def set_task(
        self,
        exchange_id: str,
        task_id: int,
        prediction_id: int | None = None,
        *,
        pre_rated_at: str | None = None,
    ) -> None:
        """The exchange's task in Label Studio (a verdict-only answer gets an outbox row with wanted 0).

        `pre_rated_at`: that of the pre-rating the task's data shows (None: none, or not known).
        For an answer no user rated, a pre-rating the task lacks makes the row due, so the next
        sync rewrites the task with it, as `mark_delivered` does for a rated one.
        """
        with self._write() as db:
            db.execute(
                "INSERT INTO outbox (exchange_id, wanted, task_id, prediction_id, updated_at)"
                " VALUES (?, 0, ?, ?, ?) ON CONFLICT (exchange_id) DO UPDATE SET task_id = excluded.task_id,"
                " prediction_id = COALESCE(excluded.prediction_id, prediction_id), verify = 0",
                (exchange_id, task_id, prediction_id, now_iso()),
            )
            db.execute(
                "UPDATE outbox SET delivered = -1, next_attempt = 0 WHERE exchange_id = ? AND wanted = 0"
                " AND EXISTS (SELECT 1 FROM exchanges WHERE id = ? AND pre_rated_at IS NOT NULL"
                " AND pre_rated_at IS NOT ?)",
                (exchange_id, exchange_id, pre_rated_at),
            )

    def mark_delivered(
        self,
        exchange_id: str,
        wanted: int,
        task_id: int,
        prediction_id: int | None = None,
        *,
        pre_rated_at: str | None = None,
    ) -> None:
        """Label Studio now has rating `wanted` (a newer rating stays pending).

        `pre_rated_at`: that of the pre-rating the task's data showed (None: none). One stored
        while the task was on its way keeps the row due, so the next sync rewrites the task.
        """
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET delivered = CASE WHEN (SELECT pre_rated_at FROM exchanges WHERE id = ?) IS ?"
                " THEN MAX(delivered, ?) ELSE delivered END, task_id = ?,"
                " prediction_id = COALESCE(?, prediction_id), verify = 0, attempts = 0, next_attempt = 0,"
                " last_error = '', updated_at = ? WHERE exchange_id = ?",
                (exchange_id, pre_rated_at, wanted, task_id, prediction_id, now_iso(), exchange_id),
            )

    def mark_failed(
        self,
        exchange_ids: Sequence[str],
        error: str,
        *,
        base: float = 1.0,
        cap: float = 300.0,
        reviews: bool = False,
        carries: bool = False,
    ) -> None:
        """Count a failed attempt and push the next one back exponentially (with jitter).

        `reviews=True`: the exchanges' inline verdicts failed, not their ratings;
        `carries=True`: `exchange_ids` are annotation ids of verdicts being carried.
        """
        table, key = (
            ("verdict_carry", "annotation_id")
            if carries
            else ("review_outbox", "exchange_id")
            if reviews
            else ("outbox", "exchange_id")
        )
        now = time.time()
        with self._write() as db:
            for exchange_id in exchange_ids:
                row = db.execute(f"SELECT attempts FROM {table} WHERE {key} = ?", (exchange_id,)).fetchone()
                attempts = (row["attempts"] if row else 0) + 1
                delay = min(cap, base * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
                db.execute(
                    f"UPDATE {table} SET attempts = ?, next_attempt = ?, last_error = ?, updated_at = ?"
                    f" WHERE {key} = ?",
                    (attempts, now + delay, error, now_iso(), exchange_id),
                )

    def retry_now(self) -> None:
        """Make every pending delivery due now (`python -m feedback sync` flushes by hand)."""
        with self._write() as db:
            db.execute("UPDATE outbox SET next_attempt = 0 WHERE wanted > delivered")
            db.execute("UPDATE review_outbox SET next_attempt = 0 WHERE wanted > delivered")
            db.execute("UPDATE verdict_carry SET next_attempt = 0")

    def reset_delivery_target(self) -> int:
        """Label Studio project changed: deliver everything again, looking each task up first.

        Returns how many exchanges' ratings go again. The project left behind (deleted, or no
        longer the one set) takes no verdict with it: every annotation stream whose verdict
        stands, a reviewer's in Label Studio or the app's copy of a Review-tab verdict, is
        queued to be made again as an annotation of the new project (`due_carries`), and
        until then the pull does not take its absence there for a deletion. A Review-tab
        verdict not sent yet goes to the new project as a new annotation.
        """
        with self._write() as db:
            cur = db.execute(
                "UPDATE outbox SET task_id = NULL, prediction_id = NULL, delivered = 0, verify = 1,"
                " attempts = 0, next_attempt = 0"
            )
            outbox = cur.rowcount
            db.execute(
                "INSERT OR IGNORE INTO verdict_carry (annotation_id, exchange_id, updated_at)"
                " SELECT annotation_id, exchange_id, ? FROM ("
                "  SELECT annotation_id, exchange_id, rating, deleted,"
                "   ROW_NUMBER() OVER (PARTITION BY annotation_id ORDER BY id DESC) AS rn"
                "  FROM ratings WHERE kind = 'reviewer' AND annotation_id IS NOT NULL)"
                " WHERE rn = 1 AND deleted = 0 AND rating IS NOT NULL",
                (now_iso(),),
            )
            db.execute("UPDATE verdict_carry SET attempts = 0, next_attempt = 0")
            # An inline verdict whose annotation is not carried (a reviewer deleted it) must not
            # be written into it by id: the project left behind may still have it.
            db.execute(
                "UPDATE review_outbox SET annotation_id = NULL"
                " WHERE annotation_id NOT IN (SELECT annotation_id FROM verdict_carry)"
            )
            db.execute(
                "UPDATE review_outbox SET verify = CASE WHEN annotation_id IS NULL THEN 1 ELSE verify END,"
                " attempts = 0, next_attempt = 0"
            )
            return outbox

    def carry_count(self) -> int:
        """Verdicts waiting to be made again in a new project."""
        return int(self._query("SELECT COUNT(*) AS n FROM verdict_carry")[0]["n"])

    # --- sync state -------------------------------------------------------------------
    def get_state(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._query("SELECT key, value FROM sync_state")}

    def set_state(self, **values: str | None) -> None:
        """Set (or, with None, remove) sync-state keys."""
        stamp = now_iso()
        with self._write() as db:
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM sync_state WHERE key = ?", (key,))
                else:
                    db.execute(
                        "INSERT INTO sync_state (key, value, updated_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                        " updated_at = excluded.updated_at",
                        (key, str(value), stamp),
                    )

    def sync_status(self, *, missing: Sequence[str] = ()) -> SyncStatus:
        """Delivery state for people; `missing`: the Label Studio settings still unset (none: configured)."""
        state = self.get_state()
        # Per answer: its thumb and its inline verdict (a task made for a verdict alone has wanted 0).
        row = self._query(
            "SELECT SUM(waiting = 0) AS delivered FROM ("
            " SELECT exchange_id, SUM(wanted > delivered) AS waiting FROM ("
            "  SELECT exchange_id, wanted, delivered FROM outbox WHERE wanted > 0"
            "  UNION ALL SELECT exchange_id, wanted, delivered FROM review_outbox"
            "  UNION ALL SELECT exchange_id, 1, 0 FROM verdict_carry)"
            " GROUP BY exchange_id)"
        )[0]
        notes = [n for n in (state.get("webhook_note"),) if n]
        return SyncStatus(
            configured=not missing,
            missing=tuple(missing),
            pending=self.pending_count(),
            delivered=int(row["delivered"] or 0),
            last_error=state.get("last_error", ""),
            last_error_at=state.get("last_error_at"),
            last_success_at=state.get("last_success_at"),
            last_pull_at=state.get("last_pull_at"),
            project_url=state.get("project_url", ""),
            webhook=state.get("webhook", ""),
            notes=notes,
        )


def _user_problems(problems: Sequence[str] | str) -> str:
    """A user's problems as stored: keys or labels (the reviewers' or the users' words), comma-joined."""
    items = problems.split(",") if isinstance(problems, str) else list(problems)
    by_user_label = {label.lower(): key for key, label in USER_PROBLEMS.items()}
    keys = [by_user_label.get(str(i).strip().lower(), str(i)) for i in items if str(i).strip()]
    found = parse_problems(keys)
    if unknown := [k for k in found if k not in USER_PROBLEMS]:
        raise ValueError(f"a user cannot say {unknown[0]!r}: use {', '.join(USER_PROBLEMS)}")
    return ",".join(found)


def _readable(reviewer: str) -> bool:
    """A reviewer name a person can read (not empty, not Label Studio's bare user id)."""
    return bool(reviewer) and not reviewer.isdigit()


def _event(row: sqlite3.Row) -> RatingEvent:
    return RatingEvent(
        id=row["id"],
        exchange_id=row["exchange_id"],
        time=row["time"],
        kind=row["kind"],
        source=row["source"],
        rating=row["rating"],
        comment=row["comment"],
        reviewer=row["reviewer"],
        annotation_id=row["annotation_id"],
        task_id=row["task_id"],
        deleted=bool(row["deleted"]),
        problems=stored_problems(row["problems"]),
    )
