"""The Data Manager's tabs reviewers start from, and tasks of earlier versions brought into the current view.

Both make a project Label Studio already holds show what this version's reviewers expect:
`ensure_views` adds the tabs of REVIEW_VIEWS it lacks, `backfill` gives old tasks the data the
current view (`feedback.review_task`) shows. They let the SDK's errors out: `feedback.labelstudio`
calls them when it connects and decides what a refusal means (a warning, not a failed sync).

Apart from `feedback.labelstudio` because they change with what reviewers see (a new tab, a new
key in the view), while the client code changes with the SDK.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from typing import Any

from label_studio_sdk import LabelStudio

from feedback.log import Exchange
from feedback.review_task import (
    USER_MODEL_VERSION,
    answer_html,
    prediction_result,
    sources_html,
    user_feedback,
)

log = logging.getLogger(__name__)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a Label Studio object: a webhook's dict or an SDK model (with the keys it does not
    declare in `model_extra`). Here rather than in `feedback.labelstudio`, which uses it too and imports
    this module."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    value = getattr(obj, key, default)
    if value is default and hasattr(obj, "model_extra") and obj.model_extra:
        return obj.model_extra.get(key, default)
    return value


# --- the Data Manager's tabs ------------------------------------------------------------------
# Label Studio's own columns, and the task data keys (`task_data`): every tab hides all but a few.
_CORE_COLUMNS = (
    "id", "inner_id", "completed_at", "total_annotations", "cancelled_annotations", "total_predictions",
    "annotators", "annotations_results", "annotations_ids", "predictions_score",
    "predictions_model_versions", "predictions_results", "file_upload", "storage_filename", "created_at",
    "updated_at", "updated_by", "avg_lead_time", "draft_exists", "data",
)  # fmt: skip
TASK_KEYS = (
    "exchange_id", "question", "answer", "sources", "answer_html", "sources_html", "standalone_question",
    "cited", "retrieved", "prompt_version", "model", "docs_commit", "session", "time", "user_rating",
    "user_comment", "user_problems", "user_feedback", "hints", "pre_rating", "pre_rating_reason",
    "pre_rating_model", "pre_rating_prompt", "reused_from", "reused_verdict",
)  # fmt: skip
# What a row shows: the answer at a glance, what the user said, the pre-rating, whether and by whom
# it was reviewed. The rest (JSON of the passages, the HTML the view renders) stays a click away.
_ROW = (
    "id",
    "completed_at",
    "annotators",
    "data.question",
    "data.answer",
    "data.user_feedback",
    "data.pre_rating",
)
_UNREVIEWED = {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0}
_REVIEWED = {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0}


def _is(key: str, value: str, operator: str = "equal") -> dict[str, Any]:
    return {"filter": f"filter:tasks:data.{key}", "operator": operator, "type": "String", "value": value}


# (title, filters, order, extra columns): the tabs a reviewer starts from. "Label All Tasks" in a tab
# goes through its tasks in its order, so the first three are queues, oldest first.
REVIEW_VIEWS: tuple[tuple[str, list[dict[str, Any]], str, tuple[str, ...]], ...] = (
    ("To review", [_UNREVIEWED], "tasks:id", ()),
    ("Thumbs down", [_is("user_rating", "bad"), _UNREVIEWED], "tasks:id", ("data.model",)),
    ("Pre-rated Bad", [_is("pre_rating", "bad"), _UNREVIEWED], "tasks:id", ("data.pre_rating_reason",)),
    ("Docs silent", [_is("prompt_version", "abstain-", "contains")], "-tasks:id", ()),
    ("Reviewed", [_REVIEWED], "-tasks:completed_at", ("annotations_results",)),
    ("All answers", [], "-tasks:id", ("data.model", "data.time")),
)


def view_data(
    title: str, filters: list[dict[str, Any]], order: str, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """A Data Manager tab as Label Studio stores it: its filters, order and hidden columns."""
    shown = {f"tasks:{c}" for c in (*_ROW, *extra)}
    columns = [f"tasks:{c}" for c in _CORE_COLUMNS] + [f"tasks:data.{k}" for k in TASK_KEYS]
    hidden = [c for c in columns if c not in shown]
    return {
        "title": title,
        "type": "list",
        "target": "tasks",
        "filters": {"conjunction": "and", "items": filters},
        "ordering": [order],
        "hiddenColumns": {
            "explore": hidden,
            "labeling": [c for c in columns if c not in ("tasks:id", "tasks:data.question")],
        },
    }


def ensure_views(client: LabelStudio, project_id: int) -> int:
    """Add the tabs of `REVIEW_VIEWS` the project lacks (by title); how many it added.

    Tabs are shared by everyone in Label Studio's organization. Only missing ones are made,
    on create and on upgrade, so a tab reviewers changed keeps their changes, and one they
    deleted stays deleted until the next upgrade.
    """
    have = {str((_get(v, "data") or {}).get("title", "")) for v in client.views.list(project=project_id)}
    made = 0
    for title, filters, order, extra in REVIEW_VIEWS:
        if title not in have:
            client.views.create(project=project_id, data=view_data(title, filters, order, extra))  # type: ignore[arg-type]
            made += 1
    return made


def _empty(key: str, empty: bool = True) -> dict[str, Any]:
    """A Data Manager filter item: task data `key` is empty (a missing key counts) or not."""
    return {"filter": f"filter:tasks:data.{key}", "operator": "empty", "type": "String", "value": empty}


def _query(*items: dict[str, Any]) -> str:
    return json.dumps({"filters": {"conjunction": "and", "items": list(items)}})


# Rated tasks without `user_feedback`: made before it existed, or by a backfill that was cut short.
_WITHOUT_USER_FEEDBACK = _query(_empty("user_feedback"), _empty("user_rating", False))
# Tasks without `hints`: made before they existed. The config shows `$hints`, a key Label Studio
# expects in every task (it refuses to import one without it).
_WITHOUT_HINTS = _query(_empty("hints"))
OLD_TASK_HINTS = "None: this answer reached Label Studio before the app sent hints."
# Tasks without the HTML the view renders (`answer_html`, `sources_html`): made before it existed.
_WITHOUT_HTML = _query(_empty("answer_html"))


def backfill(client: LabelStudio, project_id: int, page_size: int = 100) -> int:
    """Bring tasks made by earlier versions into the current view; returns how many changed.

    Without it, an upgraded project's old tasks show an empty "What the user said", no
    hints and an empty answer (the view renders `answer_html`), and those of the first
    version keep a prediction that pre-fills the reviewer's comment box with the user's
    comment. Each rated one gets its `user_feedback` text and a rating-only prediction, and
    every one a `hints` text and the answer and sources HTML. Annotations reviewers already
    submitted stay as they are.

    It asks Label Studio for such tasks only (Data Manager filters), so it costs three
    requests when there are none and runs on every connect: a backfill cut short (Label
    Studio stopped, the app restarted) finishes on the next one. Fixed tasks leave the
    filter, so it re-reads the first page until it is empty (never a task twice).
    """
    fixed = _fix_tasks(client, project_id, _WITHOUT_USER_FEEDBACK, _backfill_user_feedback, page_size)
    fixed += _fix_tasks(client, project_id, _WITHOUT_HINTS, _backfill_hints, page_size)
    fixed += _fix_tasks(client, project_id, _WITHOUT_HTML, _backfill_html, page_size)
    if fixed:
        log.info("Label Studio project %s: %d earlier tasks brought into the current view", project_id, fixed)
    return fixed


def _fix_tasks(
    client: LabelStudio, project_id: int, query: str, fix: Callable[[LabelStudio, Any], bool], page_size: int
) -> int:
    """Apply `fix` to every task the filter `query` finds; how many it changed."""
    seen: set[int] = set()
    fixed = 0
    while True:
        listing = client.tasks.list(project=project_id, query=query, page_size=page_size)
        page = [task for task in islice(listing, page_size) if int(_get(task, "id")) not in seen]
        if not page:
            return fixed
        for task in page:
            seen.add(int(_get(task, "id")))
            fixed += fix(client, task)


def _backfill_user_feedback(client: LabelStudio, task: Any) -> bool:
    """Give one earlier task its `user_feedback` text and a rating-only user prediction; False: not ours."""
    data = dict(_get(task, "data") or {})
    rating = data.get("user_rating")
    if rating not in ("good", "bad"):
        return False
    data["user_feedback"] = user_feedback(rating, str(data.get("user_comment") or ""))
    client.tasks.update(id=str(_get(task, "id")), data=data)  # data is replaced: send it whole
    for prediction in _get(task, "predictions") or []:
        if _get(prediction, "model_version") == USER_MODEL_VERSION and _get(prediction, "id"):
            client.predictions.update(
                id=int(_get(prediction, "id")),
                result=prediction_result(rating),
                model_version=USER_MODEL_VERSION,
            )
    return True


def _backfill_hints(client: LabelStudio, task: Any) -> bool:
    """Give one earlier task the `hints` text the view shows."""
    data = dict(_get(task, "data") or {})
    data["hints"] = OLD_TASK_HINTS
    client.tasks.update(id=str(_get(task, "id")), data=data)
    return True


def _backfill_html(client: LabelStudio, task: Any) -> bool:
    """Give one earlier task the answer and sources HTML the view shows, from its own data.

    Tasks of the first version carry the sources only as text: that text is shown as it is.
    """
    data = dict(_get(task, "data") or {})
    passages = [c for key in ("cited", "retrieved") for c in (data.get(key) or []) if isinstance(c, Mapping)]
    exchange = Exchange(
        id=str(data.get("exchange_id") or ""),
        time=str(data.get("time") or ""),
        session=str(data.get("session") or ""),
        question=str(data.get("question") or ""),
        standalone_question=str(data.get("standalone_question") or ""),
        answer=str(data.get("answer") or ""),
        retrieved=[c for c in data.get("retrieved") or [] if isinstance(c, Mapping)],
        cited=[c for c in data.get("cited") or [] if isinstance(c, Mapping)],
        prompt_version=str(data.get("prompt_version") or ""),
        model=str(data.get("model") or ""),
        docs_commit=str(data.get("docs_commit") or ""),
        latency_ms=None,
    )
    data["answer_html"] = answer_html(exchange)
    if passages or not data.get("sources"):
        data["sources_html"] = sources_html(exchange)
    else:
        data["sources_html"] = (
            f'<div class="dqa-html"><div class="dqa-literal">{html.escape(str(data["sources"]))}</div></div>'
        )
    client.tasks.update(id=str(_get(task, "id")), data=data)
    return True
