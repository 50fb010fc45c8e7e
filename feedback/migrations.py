"""Schema of the feedback log, as append-only numbered migrations.

The style of simonw/llm's `migrations.py`: every schema change is a new function
registered with `@migration`, named `mNNN_what`, applied once and recorded in
`_migrations`. Never edit or reorder a released migration — add a new one — so a
log written by any older version of the app upgrades in place and loses nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration (order of definition is the order applied)."""
    MIGRATIONS.append(fn)
    return fn


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on `db` (opened with isolation_level=None): the write lock taken at
    once, committed when the block ends, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations this database has not seen yet; return their names.

    `migrations` are the feedback log's unless another database of the app (the chat's
    conversations) passes its own.

    Each migration runs in its own transaction together with its `_migrations`
    row, so a crash mid-way leaves the database at the previous version.
    """
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied: list[str] = []
    for fn in migrations:
        if fn.__name__ in done:
            continue
        with immediate(db):
            # Another process may have applied it while we waited for the write lock.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (fn.__name__,)).fetchone():
                continue  # nothing written: the transaction ends empty
            fn(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (fn.__name__, datetime.now(UTC).isoformat()),
            )
        applied.append(fn.__name__)
    return applied


@migration
def m001_exchanges(db: sqlite3.Connection) -> None:
    """One row per answer given, written when it is given (rated or not)."""
    db.execute(
        """
        CREATE TABLE exchanges (
            id TEXT PRIMARY KEY,
            time TEXT NOT NULL,              -- ISO 8601, UTC
            session TEXT NOT NULL DEFAULT '',
            question TEXT NOT NULL,
            standalone_question TEXT NOT NULL DEFAULT '',
            answer TEXT NOT NULL,
            retrieved_json TEXT NOT NULL DEFAULT '[]',  -- [{source, section, score, url}]
            cited_json TEXT NOT NULL DEFAULT '[]',
            prompt_version TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            docs_commit TEXT NOT NULL DEFAULT '',
            latency_ms INTEGER
        )
        """
    )
    db.execute("CREATE INDEX exchanges_time ON exchanges (time)")
    db.execute("CREATE INDEX exchanges_session ON exchanges (session)")


@migration
def m002_ratings(db: sqlite3.Connection) -> None:
    """Every rating event, never updated: the latest row of a kind wins, the rest is history.

    kind 'user' is the asker's thumbs (+ comment); kind 'reviewer' is a verdict from
    Label Studio (source 'webhook' or 'pull', one stream per annotation) or from the
    app's Review tab (source 'inline'). A reviewer row with `deleted` = 1 withdraws
    that annotation's verdict (it was deleted in Label Studio); rating NULL means the
    annotation carries no verdict (skipped, or only a comment).
    """
    db.execute(
        """
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            exchange_id TEXT NOT NULL REFERENCES exchanges (id),
            time TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('user', 'reviewer')),
            source TEXT NOT NULL,
            rating TEXT CHECK (rating IN ('good', 'bad')),
            comment TEXT NOT NULL DEFAULT '',
            reviewer TEXT NOT NULL DEFAULT '',
            annotation_id INTEGER,
            task_id INTEGER,
            deleted INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX ratings_exchange ON ratings (exchange_id, kind, id)")
    db.execute("CREATE INDEX ratings_annotation ON ratings (annotation_id, id)")


@migration
def m003_outbox(db: sqlite3.Connection) -> None:
    """Delivery state of each rated exchange to Label Studio.

    `wanted` is the id of the latest user rating to deliver, `delivered` the one
    Label Studio has; pending means wanted > delivered. `verify` is set (and
    committed) before a task is created, so a retry after a crash or a lost
    response looks the exchange up in Label Studio first instead of creating a
    second task.
    """
    db.execute(
        """
        CREATE TABLE outbox (
            exchange_id TEXT PRIMARY KEY REFERENCES exchanges (id),
            wanted INTEGER NOT NULL,
            delivered INTEGER NOT NULL DEFAULT 0,
            task_id INTEGER,
            prediction_id INTEGER,
            verify INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX outbox_due ON outbox (next_attempt) WHERE wanted > delivered")
    db.execute("CREATE INDEX outbox_task ON outbox (task_id)")


@migration
def m004_sync_state(db: sqlite3.Connection) -> None:
    """Small key/value facts about syncing: last error, last success, pull cursor, project."""
    db.execute(
        "CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)"
    )


@migration
def m005_current_view(db: sqlite3.Connection) -> None:
    """Each exchange with its current user rating and reviewer verdict (what reports read).

    User: the latest 'user' row. Reviewer: the latest row of each annotation stream
    (the Review tab's inline verdicts are one stream), dropping withdrawn and
    verdict-less ones, then the latest of those. `verdict` is the reviewer's when
    there is one, else the user's.
    """
    db.execute(
        """
        CREATE VIEW exchange_current AS
        WITH user_latest AS (
            SELECT exchange_id, rating, comment, time,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM ratings WHERE kind = 'user'
        ),
        stream_latest AS (
            SELECT id, exchange_id, rating, comment, time, source, reviewer, deleted,
                   ROW_NUMBER() OVER (
                       PARTITION BY exchange_id, COALESCE(annotation_id, -1) ORDER BY id DESC
                   ) AS rn
            FROM ratings WHERE kind = 'reviewer'
        ),
        reviewer_latest AS (
            SELECT exchange_id, rating, comment, time, source, reviewer,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM stream_latest WHERE rn = 1 AND deleted = 0 AND rating IS NOT NULL
        )
        SELECT e.*, e.rowid AS seq,
               u.rating AS user_rating, COALESCE(u.comment, '') AS user_comment, u.time AS user_rated_at,
               r.rating AS reviewer_rating, COALESCE(r.comment, '') AS reviewer_comment,
               r.source AS reviewer_source, COALESCE(r.reviewer, '') AS reviewer, r.time AS reviewed_at,
               COALESCE(r.rating, u.rating) AS verdict,
               CASE WHEN r.rating IS NOT NULL THEN 'reviewer'
                    WHEN u.rating IS NOT NULL THEN 'user' END AS verdict_source,
               o.task_id AS task_id,
               CASE WHEN o.exchange_id IS NULL THEN 'local'
                    WHEN o.wanted > o.delivered THEN 'pending'
                    ELSE 'delivered' END AS sync
        FROM exchanges e
        LEFT JOIN user_latest u ON u.exchange_id = e.id AND u.rn = 1
        LEFT JOIN reviewer_latest r ON r.exchange_id = e.id AND r.rn = 1
        LEFT JOIN outbox o ON o.exchange_id = e.id
        """
    )


@migration
def m006_review_outbox(db: sqlite3.Connection) -> None:
    """Delivery of the Review tab's inline verdicts to Label Studio, as annotations.

    `wanted` is the id of the latest inline verdict row, `delivered` the one Label
    Studio has, `annotation_id` the annotation that carries it (created with that
    row's id as its `import_id`, so the webhook and the pull know their own echo).
    Once delivered, the inline rows join that annotation's stream: a reviewer who
    edits or deletes it in Label Studio changes the same verdict. `verify` is
    committed before an annotation is created, so a retry looks for it first.
    Inline verdicts given before this version are queued too.

    `exchange_current` is re-created so that `sync` also says 'pending' while a
    verdict waits.
    """
    db.execute(
        """
        CREATE TABLE review_outbox (
            exchange_id TEXT PRIMARY KEY REFERENCES exchanges (id),
            wanted INTEGER NOT NULL,
            delivered INTEGER NOT NULL DEFAULT 0,
            annotation_id INTEGER,
            verify INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX review_outbox_due ON review_outbox (next_attempt) WHERE wanted > delivered")
    db.execute(
        "INSERT INTO review_outbox (exchange_id, wanted, updated_at)"
        " SELECT exchange_id, MAX(id), MAX(time) FROM ratings"
        " WHERE kind = 'reviewer' AND source = 'inline' GROUP BY exchange_id"
    )
    db.execute("DROP VIEW exchange_current")
    db.execute(
        """
        CREATE VIEW exchange_current AS
        WITH user_latest AS (
            SELECT exchange_id, rating, comment, time,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM ratings WHERE kind = 'user'
        ),
        stream_latest AS (
            SELECT id, exchange_id, rating, comment, time, source, reviewer, deleted,
                   ROW_NUMBER() OVER (
                       PARTITION BY exchange_id, COALESCE(annotation_id, -1) ORDER BY id DESC
                   ) AS rn
            FROM ratings WHERE kind = 'reviewer'
        ),
        reviewer_latest AS (
            SELECT exchange_id, rating, comment, time, source, reviewer,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM stream_latest WHERE rn = 1 AND deleted = 0 AND rating IS NOT NULL
        )
        SELECT e.*, e.rowid AS seq,
               u.rating AS user_rating, COALESCE(u.comment, '') AS user_comment, u.time AS user_rated_at,
               r.rating AS reviewer_rating, COALESCE(r.comment, '') AS reviewer_comment,
               r.source AS reviewer_source, COALESCE(r.reviewer, '') AS reviewer, r.time AS reviewed_at,
               COALESCE(r.rating, u.rating) AS verdict,
               CASE WHEN r.rating IS NOT NULL THEN 'reviewer'
                    WHEN u.rating IS NOT NULL THEN 'user' END AS verdict_source,
               o.task_id AS task_id,
               CASE WHEN o.exchange_id IS NULL AND v.exchange_id IS NULL THEN 'local'
                    WHEN COALESCE(o.wanted > o.delivered, 0) OR COALESCE(v.wanted > v.delivered, 0)
                        THEN 'pending'
                    ELSE 'delivered' END AS sync
        FROM exchanges e
        LEFT JOIN user_latest u ON u.exchange_id = e.id AND u.rn = 1
        LEFT JOIN reviewer_latest r ON r.exchange_id = e.id AND r.rn = 1
        LEFT JOIN outbox o ON o.exchange_id = e.id
        LEFT JOIN review_outbox v ON v.exchange_id = e.id
        """
    )


@migration
def m007_reused_verdict(db: sqlite3.Connection) -> None:
    """Which reviewer's verdict an answer reused: the exchange it was given on, and that verdict.

    An answer to a question a reviewer had judged before is given with that verdict
    (an approved answer to follow, a rejected one not to repeat). Recording it lets
    the report compare the accuracy of answers that reused a verdict with those that
    did not. `exchange_current` (`SELECT e.*`) shows the new columns as it is.
    """
    db.execute("ALTER TABLE exchanges ADD COLUMN reused_from TEXT")
    db.execute("ALTER TABLE exchanges ADD COLUMN reused_verdict TEXT")


@migration
def m008_pre_rating(db: sqlite3.Connection) -> None:
    """A model's pre-rating of each answer (`qa.judge`): Good or Bad, its reason, which model, when.

    A hint for reviewers, kept apart from the ratings: it never counts as a verdict,
    and the report compares it with reviewers' verdicts. One per answer (a later one
    replaces it). `exchange_current` (`SELECT e.*`) shows the new columns as it is.
    """
    for column in ("pre_rating", "pre_rating_reason", "pre_rating_model", "pre_rated_at"):
        db.execute(f"ALTER TABLE exchanges ADD COLUMN {column} TEXT")


@migration
def m009_pre_rating_prompt(db: sqlite3.Connection) -> None:
    """The judge prompt's version with each pre-rating (`judge-v1`), as answers keep theirs.

    How often pre-ratings agree with reviewers depends on the prompt as much as on the
    model; keeping it lets a revised judge prompt be compared with the last one.
    """
    db.execute("ALTER TABLE exchanges ADD COLUMN pre_rating_prompt TEXT")


@migration
def m010_helped_by(db: sqlite3.Connection) -> None:
    """The approved answers to similar questions whose cited passages an answer was ranked with.

    A JSON list of their exchange ids, or NULL. An approval lifts what it cited for
    questions that are only similar (`qa.precedents.reviewed_places`); recording which
    answers it helped lets the report say whether those answers are right more often.
    """
    db.execute("ALTER TABLE exchanges ADD COLUMN helped_by TEXT")


@migration
def m011_problems(db: sqlite3.Connection) -> None:
    """What a reviewer found wrong with a Bad answer (`feedback.records.PROBLEMS` keys, comma-joined).

    A rejection says only that an answer is wrong; which of the passages, the model's
    use of them or the abstain verdict was wrong points at different fixes, and the
    passages named wrong are ranked lower for similar questions. `exchange_current`
    is re-created to show the current verdict's problems as `reviewer_problems`.
    """
    db.execute("ALTER TABLE ratings ADD COLUMN problems TEXT NOT NULL DEFAULT ''")
    db.execute("DROP VIEW exchange_current")
    db.execute(
        """
        CREATE VIEW exchange_current AS
        WITH user_latest AS (
            SELECT exchange_id, rating, comment, time,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM ratings WHERE kind = 'user'
        ),
        stream_latest AS (
            SELECT id, exchange_id, rating, comment, problems, time, source, reviewer, deleted,
                   ROW_NUMBER() OVER (
                       PARTITION BY exchange_id, COALESCE(annotation_id, -1) ORDER BY id DESC
                   ) AS rn
            FROM ratings WHERE kind = 'reviewer'
        ),
        reviewer_latest AS (
            SELECT exchange_id, rating, comment, problems, time, source, reviewer,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM stream_latest WHERE rn = 1 AND deleted = 0 AND rating IS NOT NULL
        )
        SELECT e.*, e.rowid AS seq,
               u.rating AS user_rating, COALESCE(u.comment, '') AS user_comment, u.time AS user_rated_at,
               r.rating AS reviewer_rating, COALESCE(r.comment, '') AS reviewer_comment,
               COALESCE(r.problems, '') AS reviewer_problems,
               r.source AS reviewer_source, COALESCE(r.reviewer, '') AS reviewer, r.time AS reviewed_at,
               COALESCE(r.rating, u.rating) AS verdict,
               CASE WHEN r.rating IS NOT NULL THEN 'reviewer'
                    WHEN u.rating IS NOT NULL THEN 'user' END AS verdict_source,
               o.task_id AS task_id,
               CASE WHEN o.exchange_id IS NULL AND v.exchange_id IS NULL THEN 'local'
                    WHEN COALESCE(o.wanted > o.delivered, 0) OR COALESCE(v.wanted > v.delivered, 0)
                        THEN 'pending'
                    ELSE 'delivered' END AS sync
        FROM exchanges e
        LEFT JOIN user_latest u ON u.exchange_id = e.id AND u.rn = 1
        LEFT JOIN reviewer_latest r ON r.exchange_id = e.id AND r.rn = 1
        LEFT JOIN outbox o ON o.exchange_id = e.id
        LEFT JOIN review_outbox v ON v.exchange_id = e.id
        """
    )


@migration
def m012_lowered_by(db: sqlite3.Connection) -> None:
    """The answers to similar questions rejected for wrong passages whose passages an answer ranked lower.

    A JSON list of their exchange ids, or NULL: the mirror of `helped_by`. A rejection for
    wrong passages lowers what it cited for similar questions (`qa.precedents.reviewed_places`);
    recording the answers it changed lets the report say whether they are right more often.
    """
    db.execute("ALTER TABLE exchanges ADD COLUMN lowered_by TEXT")


@migration
def m013_user_problems(db: sqlite3.Connection) -> None:
    """What a user ticked as wrong with a thumbs down (`feedback.records.USER_PROBLEMS`), in the view.

    The ratings' `problems` column (m011) holds them for the user's rows too;
    `exchange_current` is re-created to show the current thumb's as `user_problems`.
    """
    db.execute("DROP VIEW exchange_current")
    db.execute(
        """
        CREATE VIEW exchange_current AS
        WITH user_latest AS (
            SELECT exchange_id, rating, comment, problems, time,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM ratings WHERE kind = 'user'
        ),
        stream_latest AS (
            SELECT id, exchange_id, rating, comment, problems, time, source, reviewer, deleted,
                   ROW_NUMBER() OVER (
                       PARTITION BY exchange_id, COALESCE(annotation_id, -1) ORDER BY id DESC
                   ) AS rn
            FROM ratings WHERE kind = 'reviewer'
        ),
        reviewer_latest AS (
            SELECT exchange_id, rating, comment, problems, time, source, reviewer,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM stream_latest WHERE rn = 1 AND deleted = 0 AND rating IS NOT NULL
        )
        SELECT e.*, e.rowid AS seq,
               u.rating AS user_rating, COALESCE(u.comment, '') AS user_comment,
               COALESCE(u.problems, '') AS user_problems, u.time AS user_rated_at,
               r.rating AS reviewer_rating, COALESCE(r.comment, '') AS reviewer_comment,
               COALESCE(r.problems, '') AS reviewer_problems,
               r.source AS reviewer_source, COALESCE(r.reviewer, '') AS reviewer, r.time AS reviewed_at,
               COALESCE(r.rating, u.rating) AS verdict,
               CASE WHEN r.rating IS NOT NULL THEN 'reviewer'
                    WHEN u.rating IS NOT NULL THEN 'user' END AS verdict_source,
               o.task_id AS task_id,
               CASE WHEN o.exchange_id IS NULL AND v.exchange_id IS NULL THEN 'local'
                    WHEN COALESCE(o.wanted > o.delivered, 0) OR COALESCE(v.wanted > v.delivered, 0)
                        THEN 'pending'
                    ELSE 'delivered' END AS sync
        FROM exchanges e
        LEFT JOIN user_latest u ON u.exchange_id = e.id AND u.rn = 1
        LEFT JOIN reviewer_latest r ON r.exchange_id = e.id AND r.rn = 1
        LEFT JOIN outbox o ON o.exchange_id = e.id
        LEFT JOIN review_outbox v ON v.exchange_id = e.id
        """
    )


@migration
def m014_verdict_carry(db: sqlite3.Connection) -> None:
    """Label Studio verdicts to make again in a new project, when theirs was deleted or left.

    A reviewer's annotation (or the app's copy of a Review-tab verdict, edited there or
    not) lives in one project. A project deleted in Label Studio, or another one set
    (LABEL_STUDIO_PROJECT, LABEL_STUDIO_URL), is no reviewer taking verdicts back: each
    annotation stream whose verdict stands gets a row here, keyed by its annotation id,
    and the sync makes an annotation with the stream's latest verdict in the new project
    (its `import_id` that verdict's row id, so its echo is known), then moves the stream's
    rows to the new annotation: a reviewer who edits or deletes it there changes the same
    verdict. `verify` is committed before the annotation is created, so a retry looks first.

    `exchange_current` is re-created so that an answer says 'pending' while one waits.
    """
    db.execute(
        """
        CREATE TABLE verdict_carry (
            annotation_id INTEGER PRIMARY KEY,  -- the annotation in the project left behind
            exchange_id TEXT NOT NULL REFERENCES exchanges (id),
            verify INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX verdict_carry_exchange ON verdict_carry (exchange_id)")
    db.execute("DROP VIEW exchange_current")
    db.execute(
        """
        CREATE VIEW exchange_current AS
        WITH user_latest AS (
            SELECT exchange_id, rating, comment, problems, time,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM ratings WHERE kind = 'user'
        ),
        stream_latest AS (
            SELECT id, exchange_id, rating, comment, problems, time, source, reviewer, deleted,
                   ROW_NUMBER() OVER (
                       PARTITION BY exchange_id, COALESCE(annotation_id, -1) ORDER BY id DESC
                   ) AS rn
            FROM ratings WHERE kind = 'reviewer'
        ),
        reviewer_latest AS (
            SELECT exchange_id, rating, comment, problems, time, source, reviewer,
                   ROW_NUMBER() OVER (PARTITION BY exchange_id ORDER BY id DESC) AS rn
            FROM stream_latest WHERE rn = 1 AND deleted = 0 AND rating IS NOT NULL
        ),
        carried AS (SELECT DISTINCT exchange_id FROM verdict_carry)
        SELECT e.*, e.rowid AS seq,
               u.rating AS user_rating, COALESCE(u.comment, '') AS user_comment,
               COALESCE(u.problems, '') AS user_problems, u.time AS user_rated_at,
               r.rating AS reviewer_rating, COALESCE(r.comment, '') AS reviewer_comment,
               COALESCE(r.problems, '') AS reviewer_problems,
               r.source AS reviewer_source, COALESCE(r.reviewer, '') AS reviewer, r.time AS reviewed_at,
               COALESCE(r.rating, u.rating) AS verdict,
               CASE WHEN r.rating IS NOT NULL THEN 'reviewer'
                    WHEN u.rating IS NOT NULL THEN 'user' END AS verdict_source,
               o.task_id AS task_id,
               CASE WHEN o.exchange_id IS NULL AND v.exchange_id IS NULL AND k.exchange_id IS NULL THEN 'local'
                    WHEN COALESCE(o.wanted > o.delivered, 0) OR COALESCE(v.wanted > v.delivered, 0)
                        OR k.exchange_id IS NOT NULL
                        THEN 'pending'
                    ELSE 'delivered' END AS sync
        FROM exchanges e
        LEFT JOIN user_latest u ON u.exchange_id = e.id AND u.rn = 1
        LEFT JOIN reviewer_latest r ON r.exchange_id = e.id AND r.rn = 1
        LEFT JOIN outbox o ON o.exchange_id = e.id
        LEFT JOIN review_outbox v ON v.exchange_id = e.id
        LEFT JOIN carried k ON k.exchange_id = e.id
        """
    )
