"""What the pages need from the app: the answer chain, the feedback log, and what to show in the header."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedback.log import FeedbackLog
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
