"""What the pages need from the app: the answer chain, the feedback log, and what to show in the header.

It is also where the two halves meet: the reviewers' verdicts in the feedback log
become the answer chain's precedents (`qa.precedents`), neither knowing the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qa.precedents import Judged

if TYPE_CHECKING:
    from feedback.log import FeedbackLog
    from feedback.records import Exchange
    from feedback.sync import SyncWorker
    from qa.chain import AnswerChain
    from qa.store import IndexState
    from settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    log: FeedbackLog
    chain: AnswerChain | None  # None: nothing ingested yet (or the store can't be opened)
    docs: IndexState
    model_label: str
    sync: SyncWorker | None = None
    local_model: bool = False
    problem: str = ""  # why `chain` is None, in words a person can act on
    read_docs: Callable[[], IndexState] | None = None  # the index's state on disk (before a chain opens)
    open_chain: Callable[[], AnswerChain] | None = None  # builds the chain once there is an index
    # the log's `reviews_stamp` that the chain's precedents reflect (-1: none loaded yet)
    _reviews_seen: int = field(default=-1, repr=False)

    def refresh(self) -> None:
        """Catch up with an ingest that finished after the app started.

        The header and the commit logged with each answer name the index being answered
        from: the retriever's, once it has loaded a finished ingest (a new index it can't
        load keeps the old one answering, and named). An app started before anything was
        ingested starts answering without a restart. Cheap: one stat, or one small JSON read.
        """
        retriever = getattr(self.chain, "retriever", None)
        if retriever is not None and hasattr(retriever, "follow_ingest") and hasattr(retriever, "state"):
            retriever.follow_ingest()
            self.docs = retriever.state
        elif self.read_docs is not None:
            try:
                self.docs = self.read_docs()
            except Exception:  # an unreadable state file: keep what we had, the chain says why
                log.warning("cannot read the docs index state", exc_info=True)
        if self.chain is None and self.open_chain is not None and self.docs.commit:
            try:
                self.chain = self.open_chain()
                self.problem = ""
            except Exception as exc:
                log.exception("cannot open the docs index")
                self.problem = str(exc)

    def refresh_precedents(self, *, wait: bool = False) -> None:
        """Give the chain the reviewers' current verdicts, when they changed (one small query if not).

        Called before each question (not by `refresh`, which page loads and /healthz call too).
        A question never waits for a load in progress (the app starts one when it starts:
        a log with thousands of verdicts takes seconds to embed); it is answered with the
        verdicts loaded so far. A failure (the embedding model, the log) is logged and
        tried again on the next question: the answer goes on without them.
        """
        precedents = getattr(self.chain, "precedents", None)
        if precedents is None:
            return
        try:
            stamp = self.log.reviews_stamp()
            if stamp != self._reviews_seen and precedents.update(
                [judged(e) for e in self.log.reviewed()], wait=wait
            ):
                self._reviews_seen = stamp
        except Exception:
            log.exception("cannot load the reviewers' verdicts for reuse; answering without them")


def judged(exchange: Exchange) -> Judged:
    """An exchange with a reviewer's verdict, as the answer chain reuses it.

    Its question is the one that was searched and answered: a follow-up's standalone
    form ("webhook timeout can I raise it?"), not "can I raise it?", which a later
    conversation may ask about something else.
    """
    return Judged(
        id=exchange.id,
        question=exchange.standalone_question or exchange.question,
        answer=exchange.answer,
        verdict=exchange.reviewer_rating or "bad",  # `reviewed()` gives only exchanges with one
        comment=exchange.reviewer_comment,
        reviewer=exchange.reviewer,
        time=exchange.reviewed_at or exchange.time,
    )
