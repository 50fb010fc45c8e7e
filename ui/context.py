"""What the pages need from the app: the answer chain, the feedback log, and what to show in the header.

It is also where the two halves meet, neither knowing the other: the reviewers'
verdicts in the feedback log become the answer chain's precedents (`qa.precedents`),
and a model's pre-rating of each logged answer (`qa.judge`) goes into the log for
reviewers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qa.judge import PreRating
from qa.llm import describe_error
from qa.precedents import Judged

if TYPE_CHECKING:
    from feedback.log import FeedbackLog
    from feedback.records import Exchange
    from feedback.sync import SyncWorker
    from qa.chain import Answer, AnswerChain
    from qa.judge import AnswerJudge
    from qa.refresh import DocsRefresher
    from qa.revise import PromptReviser
    from qa.store import IndexState
    from settings import Settings
    from ui.conversations import ConversationStore

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    log: FeedbackLog
    chain: AnswerChain | None  # None: nothing ingested yet (or the store can't be opened)
    docs: IndexState
    model_label: str
    conversations: ConversationStore  # each browser's (or account's) conversations, listed beside the chat
    sync: SyncWorker | None = None
    # the model the OpenAI-compatible server last said answered ("" until it has): a llama.cpp
    # server answers any OPENAI_MODEL with the model it loaded, which the header then names
    served_model: str = ""
    # answers come from the local model (demo quality): the lines they cite show open under them
    local_model: bool = False
    problem: str = ""  # why `chain` is None, in words a person can act on
    read_docs: Callable[[], IndexState] | None = None  # the index's state on disk (before a chain opens)
    open_chain: Callable[[], AnswerChain] | None = None  # builds the chain once there is an index
    judge: AnswerJudge | None = None  # pre-rates each answer for reviewers (None: PRE_RATE off)
    reviser: PromptReviser | None = None  # drafts answer-prompt revisions from reviewers' feedback
    refresher: DocsRefresher | None = None  # runs `python ingest.py` on INGEST_INTERVAL, or when asked
    # the log's `reviews_stamp` that the chain's precedents reflect (-1: none loaded yet)
    _reviews_seen: int = field(default=-1, repr=False)
    _judging: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="pre-rate"), repr=False
    )

    def refresh(self) -> None:
        """Catch up with an ingest that finished after the app started, and with the prompt files.

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
        if hasattr(self.chain, "follow_prompts"):  # a revision adopted from the command line
            self.chain.follow_prompts()  # type: ignore[union-attr]
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

    def pre_rate(self, exchange_id: str, answer: Answer) -> Future[PreRating | None] | None:
        """Have the judge pre-rate a logged answer, in the background: the chat never waits for it.

        Not for a reply that found the docs silent (no model wrote it) or an empty one. A
        failure (the model's server, a reply without a verdict) is logged and leaves the
        answer without a pre-rating; reviewers judge it all the same.
        """
        if self.judge is None or answer.abstained or not answer.text.strip():
            return None
        return self._judging.submit(self._pre_rate, exchange_id, answer)

    def _pre_rate(self, exchange_id: str, answer: Answer) -> PreRating | None:
        assert self.judge is not None
        try:
            rating = self.judge.rate(answer.standalone_question, answer.text, answer.context)
        except Exception as exc:
            log.warning("pre-rating answer %s failed: %s", exchange_id, describe_error(exc, self.settings))
            return None
        if rating is not None:
            try:
                self.log.set_pre_rating(
                    exchange_id,
                    rating.verdict,
                    rating.reason,
                    model=rating.model,
                    prompt_version=rating.prompt_version,
                )
            except Exception:  # the log closed under it (the app stopping): the answer stays unrated
                log.exception("cannot store the pre-rating of answer %s", exchange_id)
                return None
        return rating

    def close(self) -> None:
        """Let pre-ratings in progress finish (or give up on queued ones), then close the log and the conversations."""
        self._judging.shutdown(wait=True, cancel_futures=True)
        self.log.close()
        self.conversations.close()


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
        cited=tuple((str(c.get("source", "")), str(c.get("section", ""))) for c in exchange.cited),
        problems=exchange.reviewer_problems,  # the same keys: WRONG_SOURCES is "wrong_sources"
    )
