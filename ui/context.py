"""What the pages need from the app: the answer chain, the feedback log, and what to show in the header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedback.log import FeedbackLog
    from feedback.sync import SyncWorker
    from qa.chain import AnswerChain
    from qa.store import IndexState
    from settings import Settings


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
