"""Each browser's conversations, kept on the server, so the chat can list them and open any again.

The browser keeps only a random id of its own (localStorage) and the conversation each
of its tabs has open (sessionStorage); the messages, thumbs' ids and follow-up turns
are here, in `DATA_DIR/conversations.sqlite`. Earlier versions kept them in the browser
(gr.BrowserState), which could not list more than a few: localStorage holds ~5 MB, and
every tab wrote the whole copy it had loaded, so two tabs open at once overwrote each
other's conversations. A copy kept that way is moved here when its browser comes back
(`import_kept`).

Two tabs can show one conversation. Each save names the version it continues; when
another tab saved since, the save becomes a new conversation (its messages up to
then included), so neither tab's answers are lost.

The exchanges themselves are in the feedback log whatever happens here: deleting a
conversation only takes it off its browser's list.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedback.migrations import immediate, migrate

KEPT_MESSAGES = 100  # a conversation keeps its last 100 chat messages (about 50 exchanges)
LISTED = 50  # the conversations the chat lists, written last first
TITLE_CHARS = 60
# What a browser's own id looks like (a UUID, made by the page): anything else keeps nothing.
BROWSER_ID = re.compile(r"[A-Za-z0-9-]{16,64}")
EMPTY_CONVERSATION: dict[str, Any] = {"history": [], "turns": [], "ids": {}}


def m001_conversations(db: sqlite3.Connection) -> None:
    """One row per conversation of a browser: its messages as the chat shows them."""
    db.execute(
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            browser TEXT NOT NULL,
            title TEXT NOT NULL,
            state_json TEXT NOT NULL,    -- {"history", "turns", "ids"}: the chat's own state
            created REAL NOT NULL,       -- Unix time
            updated REAL NOT NULL,
            version INTEGER NOT NULL     -- +1 on every save: a tab's save names the one it continues
        )
        """
    )
    db.execute("CREATE INDEX conversations_browser ON conversations (browser, updated)")


MIGRATIONS = [m001_conversations]  # append-only, as the feedback log's


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    updated: float
    version: int
    state: dict[str, Any] = field(default_factory=lambda: dict(EMPTY_CONVERSATION))


def kept_conversation(history: list, turns: list, ids: dict) -> dict[str, Any]:
    """What is kept of a conversation: its last `KEPT_MESSAGES` messages, the thumbs' ids re-keyed to them."""
    drop = max(len(history) - KEPT_MESSAGES, 0)
    kept_ids = {str(int(k) - drop): v for k, v in ids.items() if int(k) >= drop}
    kept = set(kept_ids.values())
    return {
        "history": history[drop:],
        "turns": [t for t in turns if t.get("exchange_id") in kept] if drop else turns,
        "ids": kept_ids,
    }


def title_of(state: dict[str, Any]) -> str:
    """A conversation's name in the list: its first question, on one line and cut short."""
    turns, history = state.get("turns") or [], state.get("history") or []
    first = turns[0].get("question", "") if turns else ""
    if not first:
        asked = next(
            (m.get("content") for m in history if isinstance(m, dict) and m.get("role") == "user"), ""
        )
        first = asked if isinstance(asked, str) else " ".join(str(p) for p in asked or [])
    text = " ".join(str(first).split()) or "Untitled"
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def _kept(state: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """A conversation as it is stored: its title (its first question, taken before the oldest
    messages are dropped), what is kept of it, and that as JSON."""
    title = title_of(state)
    kept = kept_conversation(state["history"], state["turns"], state["ids"])
    return title, kept, json.dumps(kept, ensure_ascii=False)


def valid_state(state: object) -> dict[str, Any] | None:
    """`state` if it has the chat's shape (a list of messages, a list of turns, a dict of ids)."""
    if not isinstance(state, dict):
        return None
    history, turns, ids = state.get("history"), state.get("turns"), state.get("ids")
    if isinstance(history, list) and isinstance(turns, list) and isinstance(ids, dict):
        return {"history": history, "turns": turns, "ids": ids}
    return None


def kept_tabs(kept: object) -> dict[str, dict[str, Any]]:
    """A copy an earlier version kept in the browser, as {tab id: {"conversation", "at"}}.

    Its one-conversation form, older still, becomes the conversation of no tab in particular.
    """
    if not isinstance(kept, dict):
        return {}
    if isinstance(kept.get("tabs"), dict):
        return {
            str(tab): entry
            for tab, entry in kept["tabs"].items()
            if isinstance(entry, dict) and isinstance(entry.get("conversation"), dict)
        }
    if "history" in kept:
        return {"": {"conversation": kept, "at": 0}}
    return {}


class ConversationStore:
    """The conversations of every browser, at `path` (made with its folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            migrate(self._db, MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def list(self, browser: str, limit: int = LISTED) -> list[Conversation]:
        """`browser`'s conversations, written last first (without their messages)."""
        if not BROWSER_ID.fullmatch(browser or ""):
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT id, title, updated, version FROM conversations WHERE browser = ?"
                " ORDER BY updated DESC, rowid DESC LIMIT ?",
                (browser, limit),
            ).fetchall()
        return [Conversation(r["id"], r["title"], r["updated"], r["version"]) for r in rows]

    def get(self, browser: str, conversation_id: str) -> Conversation | None:
        """One of `browser`'s conversations with its messages; None if it has none by that id."""
        if not conversation_id or not BROWSER_ID.fullmatch(browser or ""):
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM conversations WHERE browser = ? AND id = ?", (browser, conversation_id)
            ).fetchone()
        if row is None:
            return None
        state = valid_state(json.loads(row["state_json"])) or dict(EMPTY_CONVERSATION)
        return Conversation(row["id"], row["title"], row["updated"], row["version"], state)

    def latest(self, browser: str) -> Conversation | None:
        """The conversation `browser` wrote last (what a tab it has not opened before shows)."""
        listed = self.list(browser, limit=1)
        return self.get(browser, listed[0].id) if listed else None

    def save(
        self,
        browser: str,
        conversation_id: str,
        state: dict[str, Any],
        version: int,
        *,
        at: float | None = None,
    ) -> Conversation | None:
        """Keep `state` as conversation `conversation_id` ("" for a new one), continuing `version`.

        Returns the conversation as kept, which is a new one when `conversation_id` is
        unknown (new, or deleted by another tab meanwhile) or another tab saved it since
        `version`. A conversation with no messages is not kept (deleted if it was), nor is
        anything for a browser without a proper id: None.
        """
        if not BROWSER_ID.fullmatch(browser or ""):
            return None
        title, state, body = _kept(state)
        if not state["history"]:
            self.delete(browser, conversation_id)
            return None
        now = time.time() if at is None else at
        with self._lock, immediate(self._db):
            row = self._db.execute(
                "SELECT version, title FROM conversations WHERE browser = ? AND id = ?",
                (browser, conversation_id or ""),
            ).fetchone()
            if row is not None and row["version"] == version:
                kept = Conversation(conversation_id, row["title"], now, version + 1, state)
                self._db.execute(
                    "UPDATE conversations SET state_json = ?, updated = ?, version = ? WHERE id = ?",
                    (body, now, kept.version, kept.id),
                )
            else:  # new, deleted elsewhere, or saved by another tab since: a conversation of its own
                kept = Conversation(uuid.uuid4().hex, title, now, 1, state)
                self._insert(browser, kept, body)
        return kept

    def _insert(self, browser: str, kept: Conversation, body: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO conversations (id, browser, title, state_json, created, updated, version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kept.id, browser, kept.title, body, kept.updated, kept.updated, kept.version),
        )

    def delete(self, browser: str, conversation_id: str) -> bool:
        """Take a conversation off `browser`'s list (its exchanges stay in the feedback log)."""
        if not conversation_id or not BROWSER_ID.fullmatch(browser or ""):
            return False
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM conversations WHERE browser = ? AND id = ?", (browser, conversation_id)
            )
        return cursor.rowcount > 0

    def import_kept(self, browser: str, kept: object) -> dict[str, str]:
        """Move the conversations an earlier version kept in the browser here: {tab id: conversation id}.

        Importing the same copy twice (two tabs loading at once) keeps one of each: an imported
        conversation's id is made from what it was.
        """
        if not BROWSER_ID.fullmatch(browser or ""):
            return {}
        ids: dict[str, str] = {}
        for tab, entry in kept_tabs(kept).items():
            state = valid_state(entry["conversation"])
            if state is None or not state["history"]:
                continue
            title, state, body = _kept(state)
            at = float(entry.get("at") or 0) or time.time()
            digest = hashlib.sha256(f"{browser}\n{tab}\n{body}".encode()).hexdigest()[:32]
            with self._lock:
                self._insert(browser, Conversation(digest, title, at, 1, state), body)
            ids[tab] = digest
        return ids
