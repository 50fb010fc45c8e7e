"""POST /webhooks/label-studio: reviewers' verdicts the moment they are saved.

Label Studio calls it inside its own request (1 s timeout, no retries), so the
handler only checks the secret, reads the verdict and writes one row; the sync
worker's periodic pull catches anything a webhook missed, and its pull a few
seconds after each webhook (`on_verdict`) replaces the bare user id a payload
names its reviewer by with their name. Payloads carry the whole project, API
tokens included: they are never logged, and errors say only what was wrong with them.

    app.include_router(webhook_router(feedback_log, settings, on_verdict=worker.pull_soon))
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from feedback.config import WEBHOOK_PATH, webhook_secret
from feedback.labelstudio import WEBHOOK_SECRET_HEADER, parse_annotation
from feedback.log import FeedbackLog
from settings import Settings, get_settings

log = logging.getLogger(__name__)

ANNOTATION_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED"}
DELETE_ACTION = "ANNOTATIONS_DELETED"


def _presented_secret(request: Request) -> str:
    """The secret from the header we register, a bearer token, or the URL (?secret=)."""
    value = request.headers.get(WEBHOOK_SECRET_HEADER, "")
    if not value:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            value = auth[7:].strip()
    return value or request.query_params.get("secret", "") or request.query_params.get("token", "")


def handle_payload(feedback_log: FeedbackLog, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Store the verdict(s) a Label Studio webhook payload carries; returns a summary."""
    action = payload.get("action")
    if action in ANNOTATION_ACTIONS:
        annotation = payload.get("annotation")
        if not isinstance(annotation, Mapping) or "id" not in annotation:
            return {"status": "ignored", "reason": "no annotation in payload"}
        task = payload.get("task") if isinstance(payload.get("task"), Mapping) else {}
        data = task.get("data") if isinstance(task.get("data"), Mapping) else {}
        task_id = task.get("id") or annotation.get("task")
        if isinstance(task_id, Mapping):
            task_id = task_id.get("id")
        exchange_id = data.get("exchange_id")
        if not exchange_id and task_id is not None:
            exchange_id = feedback_log.task_exchange(int(task_id))
        if not exchange_id or not feedback_log.has_exchange(str(exchange_id)):
            return {"status": "ignored", "reason": "task is not an exchange of this app"}
        verdict = parse_annotation(annotation, int(task_id) if task_id is not None else None)
        event = verdict.save(feedback_log, str(exchange_id), source="webhook")
        return {"status": "ok", "exchange_id": exchange_id, "stored": int(event is not None)}
    if action == DELETE_ACTION:
        stored = 0
        for item in payload.get("annotations") or []:
            annotation_id = item.get("id") if isinstance(item, Mapping) else item
            if annotation_id is None:
                continue
            exchange_id = feedback_log.annotation_exchange(int(annotation_id))
            if exchange_id and feedback_log.review(
                exchange_id, None, source="webhook", annotation_id=int(annotation_id), deleted=True
            ):
                stored += 1
        return {"status": "ok", "stored": stored}
    return {"status": "ignored", "reason": f"action {action!r} is not handled"}


def webhook_router(
    feedback_log: FeedbackLog,
    settings: Settings | None = None,
    *,
    path: str = WEBHOOK_PATH,
    on_verdict: Callable[[], None] | None = None,
) -> APIRouter:
    """A router serving Label Studio's webhook for `feedback_log`; mount it beside Gradio.

    `on_verdict` is called after a verdict is stored: the app passes `SyncWorker.pull_soon`,
    since a webhook names the reviewer only by id, and calling Label Studio back from inside
    its own request could stall it.
    """
    settings = settings or get_settings()
    secret = webhook_secret(settings)
    router = APIRouter()

    @router.post(path, include_in_schema=False)
    async def label_studio_webhook(request: Request) -> JSONResponse:
        presented = _presented_secret(request)
        if not presented or not hmac.compare_digest(presented.encode(), secret.encode()):
            return JSONResponse(
                {
                    "detail": "missing or wrong webhook secret "
                    f"(send it in the {WEBHOOK_SECRET_HEADER} header)"
                },
                status_code=401,
            )
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"detail": "body is not JSON"}, status_code=400)
        if not isinstance(payload, Mapping):
            return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
        try:
            result = await run_in_threadpool(handle_payload, feedback_log, payload)
        except (TypeError, ValueError) as exc:  # malformed ids: say so, never echo the payload
            return JSONResponse(
                {"detail": f"unexpected payload shape: {type(exc).__name__}"}, status_code=400
            )
        log.info("label studio webhook %s: %s", payload.get("action"), result.get("status"))
        if result.get("stored") and on_verdict is not None:
            on_verdict()
        return JSONResponse(result)

    return router
