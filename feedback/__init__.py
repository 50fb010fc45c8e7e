"""Feedback: the local log of answers and ratings, and its Label Studio sync.

Knows nothing of retrieval or Gradio: the app hands it exchanges and ratings.

    from feedback import FeedbackLog, SyncWorker, webhook_router

    feedback_log = FeedbackLog(settings.feedback_db)
    worker = SyncWorker(feedback_log, settings)   # no-op without LABEL_STUDIO_URL/API_KEY
    worker.start()
    app.include_router(webhook_router(feedback_log, settings))
    exchange_id = feedback_log.record_exchange(question=..., answer=..., cited=[...], ...)
    feedback_log.rate(exchange_id, "bad", comment="wrong version")
    worker.status().message, feedback_log.accuracy("day")
"""

from typing import TYPE_CHECKING

from feedback.log import (
    AccuracyRow,
    Exchange,
    FeedbackLog,
    RatingEvent,
    SyncStatus,
    UnknownExchangeError,
)

if TYPE_CHECKING:
    from feedback.sync import SyncReport, SyncWorker
    from feedback.webhook import webhook_router

# The Label Studio SDK and FastAPI load only when asked for: `python -m feedback report`
# and the log itself start fast.
_LAZY = {"SyncReport": "feedback.sync", "SyncWorker": "feedback.sync", "webhook_router": "feedback.webhook"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'feedback' has no attribute {name!r}")


__all__ = [
    "AccuracyRow",
    "Exchange",
    "FeedbackLog",
    "RatingEvent",
    "SyncReport",
    "SyncStatus",
    "SyncWorker",
    "UnknownExchangeError",
    "webhook_router",
]
