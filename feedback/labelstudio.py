"""Talking to Label Studio (label-studio-sdk 2.x): the client, its errors, the project, verdicts, the webhook.

Everything that knows Label Studio's API lives here: get-or-create of the project (upgrading a
config an earlier version shipped, adding the reviewers' tabs, bringing old tasks up to date),
sending tasks and the user's prediction, reading a verdict out of an annotation, get-or-create of
the webhook, and turning SDK errors into sentences a person can act on. `feedback.sync` decides
*when* to call it (a `Verdict` read here is saved to the log by `Verdict.save`).

What the tasks and the view show is not here: `feedback.review_task` (the labeling config, a
task's content) and `feedback.review_views` (the Data Manager's tabs, backfill of old tasks)
change with the product, this module with the SDK.

SDK pitfalls handled here: the default base URL is localhost:8000 (we always pass
it), `max_retries` defaults to 2 and retries POSTs too (duplicate tasks: we pass
0 and retry ourselves, idempotently), the default timeout is 60 s (we pass a
short one), `projects.list(title=...)` matches by substring (we compare titles).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from feedback.config import KeyOrigin
from feedback.log import Delivery, FeedbackLog, Rating, RatingEvent
from feedback.records import parse_problems
from feedback.review_task import (
    COMMENT_FIELD,
    LABEL_CONFIG,
    PREVIOUS_LABEL_CONFIGS,
    PROBLEMS_FIELD,
    PROJECT_SETTINGS,
    RATING_FIELD,
    USER_MODEL_VERSION,
    prediction_result,
    task_data,
    verdict_result,
)
from feedback.review_views import _get, backfill, ensure_views

log = logging.getLogger(__name__)

WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]
WEBHOOK_SECRET_HEADER = "X-Webhook-Secret"


class LabelStudioError(Exception):
    """A Label Studio call failed; `str()` is a sentence for a person, never a payload."""


def describe_error(
    exc: BaseException, url: str, timeout: float | None = None, *, key: KeyOrigin | None = None
) -> str:
    """Say what went wrong with Label Studio at `url` and what to do about it.

    `key`: where the API key came from (`feedback.config.key_origin`), so a refused key
    names the place to change it.
    """
    key = key or KeyOrigin()
    if isinstance(exc, LabelStudioError):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        within = f" within {timeout:g} s" if timeout else ""
        return (
            f"Label Studio at {url} did not answer{within} — it may be overloaded; "
            "will retry (LABEL_STUDIO_TIMEOUT)"
        )
    if isinstance(exc, httpx.TransportError):
        return f"Label Studio at {url} is not reachable — is it running? scripts/labelstudio.sh start"
    if isinstance(exc, ApiError):
        status = exc.status_code
        detail = _detail(exc.body)
        if status == 401:
            if "expired" in detail.lower():
                return (
                    "Label Studio says the API key (personal access token) has expired — create a new one "
                    f"under Account & Settings and set {key.setting}"
                )
            return f"Label Studio refused the API key (401) — {key.fix}"
        if status == 403:
            return (
                f"Label Studio denied access (403: {detail or 'forbidden'}) — {key.fix}; "
                "a legacy token needs legacy tokens enabled in the organization "
                "(scripts/labelstudio.sh does), or use a personal access token"
            )
        if status == 404:
            return (
                f"Label Studio at {url} has no such resource (404: {detail or 'not found'}) "
                "— check LABEL_STUDIO_URL, or was the project deleted? (it is created again)"
            )
        if status is not None and status >= 500:
            return f"Label Studio at {url} failed ({status}) — see its server log; will retry"
        if status is None:
            return f"Label Studio client error: {detail or 'no detail'}"
        return f"Label Studio rejected the request ({status}: {detail or 'no detail'})"
    if isinstance(exc, ValueError):  # JSON or model validation: something else answered
        return f"{url} answered, but not like Label Studio's API — is LABEL_STUDIO_URL right?"
    return f"Label Studio sync failed: {type(exc).__name__}: {str(exc)[:200]}"


def _detail(body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("detail", "validation_errors", "message", "error"):
            if body.get(key):
                return str(body[key])[:300]
        return json.dumps(body)[:300]
    return str(body or "")[:300]


def is_connection_problem(exc: BaseException) -> bool:
    """Problems every further call would hit too (down, slow, bad key): stop the cycle."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ApiError) and (exc.status_code in (401, 403) or (exc.status_code or 0) >= 500)


def is_refusal(exc: ApiError) -> bool:
    """Label Studio answered and said no (4xx): for an optional step, a warning rather than a failed sync."""
    return not is_connection_problem(exc) and exc.status_code is not None and 400 <= exc.status_code < 500


def make_client(url: str, api_key: str, timeout: float, key: KeyOrigin | None = None) -> LabelStudio:
    """An SDK client with our URL, a short timeout and no SDK retries.

    Legacy tokens and personal access tokens (JWT refresh tokens, which the SDK
    exchanges for access tokens itself) both work; an expired JWT fails here (`key`:
    where it came from, for the error).
    """
    if not url:
        raise LabelStudioError("LABEL_STUDIO_URL is not set")
    if not api_key:
        raise LabelStudioError("LABEL_STUDIO_API_KEY is not set")
    try:
        return LabelStudio(base_url=url.rstrip("/"), api_key=api_key, timeout=timeout, max_retries=0)
    except ApiError as exc:
        raise LabelStudioError(describe_error(exc, url, key=key)) from None


@dataclass(frozen=True)
class Verdict:
    """A reviewer's annotation as the log stores it."""

    annotation_id: int
    task_id: int | None
    rating: Rating | None  # None: skipped, or no choice made
    comment: str
    reviewer: str
    import_id: int | None = None  # set on annotations the app made from a Review-tab verdict
    problems: tuple[str, ...] = ()  # what was wrong (`PROBLEMS` keys), with a Bad verdict

    def save(self, log: FeedbackLog, exchange_id: str, source: str) -> RatingEvent | None:
        """Store it as the exchange's reviewer verdict; None when the log already had it.

        Webhook and pull both call this: keyed by annotation id, one annotation is stored once.
        """
        return log.review(
            exchange_id,
            self.rating,
            self.comment,
            reviewer=self.reviewer,
            source=source,
            annotation_id=self.annotation_id,
            task_id=self.task_id,
            import_id=self.import_id,
            problems=self.problems,
        )


def reviewer_name(annotation: Any) -> str:
    """Who made the annotation, as readable as Label Studio's payload allows.

    Task listings (the pull) carry `created_username`, "First Last email, id"; a
    single task's annotations carry `completed_by` as the user; the webhook only
    the numeric user id. The first two give the same "First Last email" (the log
    keeps that name for the annotation when a later webhook knows only the id).
    """
    completed_by = _get(annotation, "completed_by")
    if isinstance(completed_by, Mapping):
        name = " ".join(
            str(completed_by.get(key) or "").strip() for key in ("first_name", "last_name", "email")
        ).split()
        if name:
            return " ".join(name)
        completed_by = completed_by.get("id")
    username = " ".join(str(_get(annotation, "created_username") or "").split())
    match = re.fullmatch(r"(.*?),\s*(\d+)", username)
    name = match.group(1).strip(" ,") if match else username
    if name:
        return name
    return str(completed_by) if completed_by is not None else ""


def parse_annotation(annotation: Any, task_id: int | None = None) -> Verdict:
    """Read Good/Bad, what was wrong and the comment out of an annotation (webhook dict or SDK object).

    Comments are stripped: Label Studio's text box keeps the Enter that submits them. A
    problem choice this version does not know (the config edited by hand) is left out.
    """
    rating: Rating | None = None
    comments: list[str] = []
    problems: list[str] = []
    for item in _get(annotation, "result") or []:
        name = _get(item, "from_name")
        value = _get(item, "value") or {}
        if name == RATING_FIELD:
            choices = _get(value, "choices") or []
            if choices:
                choice = str(choices[0]).strip().lower()
                rating = "good" if choice == "good" else "bad" if choice == "bad" else None
        elif name == PROBLEMS_FIELD:
            for choice in _get(value, "choices") or []:
                try:
                    problems.extend(parse_problems([choice]))
                except ValueError:
                    log.warning("annotation %s: unknown problem %r left out", _get(annotation, "id"), choice)
        elif name == COMMENT_FIELD:
            comments.extend(str(t).strip() for t in (_get(value, "text") or []) if str(t).strip())
    if _get(annotation, "was_cancelled"):
        rating = None
    task = _get(annotation, "task", task_id)
    if isinstance(task, Mapping):
        task = task.get("id")
    import_id = _get(annotation, "import_id")
    return Verdict(
        annotation_id=int(_get(annotation, "id")),
        task_id=int(task) if task is not None else task_id,
        rating=rating,
        comment="\n".join(comments),
        reviewer=reviewer_name(annotation),
        import_id=int(import_id) if import_id is not None else None,
        problems=parse_problems(problems) if rating == "bad" else (),
    )


def iso(value: Any) -> str:
    """Label Studio times (datetime or text) as sortable UTC ISO text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"not a time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class RemoteTask:
    id: int
    exchange_id: str | None
    updated_at: str | None
    annotations: list[Any]
    prediction_id: int | None


# --- a project of an earlier version brought up to date ------------------------------------
# What it is given comes from `feedback.review_task` and `feedback.review_views`; whether Label
# Studio refusing it (4xx) is a warning or a failed sync is decided here, with its other errors.
def _normalized(config: str) -> str:
    return " ".join(config.split())


def upgrade_label_config(
    client: LabelStudio, project_id: int, current: str, wanted: str = LABEL_CONFIG
) -> bool:
    """Move a project made by an older version of the app to `wanted`; True when it did.

    Only a config we shipped before is replaced (one edited by hand stays), and with it the
    project's reviewer settings (instructions, Skip) and the Data Manager's tabs missing. The
    new config keeps every control and object name annotations refer to, which Label Studio
    requires over existing annotations; if it refuses anyway (4xx), reviewers keep the old
    view and sync carries on: a warning, not a failed sync. Connection problems propagate
    like any other call.
    """
    if _normalized(current) not in {_normalized(c) for c in PREVIOUS_LABEL_CONFIGS}:
        return False
    upgrade = partial(client.projects.update, id=project_id, label_config=wanted, **PROJECT_SETTINGS)
    if not _unless_refused(upgrade, project_id, NOT_UPGRADED):
        return False
    log.info("Label Studio project %s: labeling config upgraded", project_id)
    _unless_refused(lambda: ensure_views(client, project_id), project_id, NO_VIEWS)
    return True


# What a refused step leaves as it was (`_unless_refused`): %s is the project, then the reason.
NOT_UPGRADED = (
    "Label Studio project %s keeps its old labeling config: updating it was refused (%s). "
    "Reviewers do not see what new tasks hold in their data (user_feedback, hints, answer_html); "
    "paste feedback/review_task.py LABEL_CONFIG into the project's Labeling Interface by hand."
)
NO_VIEWS = "Label Studio project %s: the Data Manager's review tabs were not made (%s)"
NOT_BACKFILLED = "Label Studio project %s: earlier tasks keep an empty 'What the user said' or hints (%s)"


def _unless_refused(step: Callable[[], object], project_id: int, left_as_it_was: str) -> bool:
    """Run `step`; Label Studio refusing it (4xx) is a warning saying what stays as it was, not a
    failed sync (False). Its other errors, connection problems among them, propagate."""
    try:
        step()
    except ApiError as exc:
        if not is_refusal(exc):
            raise
        log.warning(left_as_it_was, project_id, describe_error(exc, ""))
        return False
    return True


def webhook_problem(client: LabelStudio, project_id: int, hook_id: int, url: str) -> str:
    """What keeps webhook `hook_id` from calling `url` for project `project_id`; "" when nothing does."""
    try:
        hook = client.webhooks.get(id=hook_id)
    except ApiError as exc:
        if exc.status_code != 404:
            raise
        return "it is no longer in Label Studio (deleted there?)"
    if hook.project != project_id:
        return f"it is not on project {project_id} any more"
    if hook.url != url:
        return f"it calls {hook.url} instead"
    if not hook.is_active:
        return "it is disabled in Label Studio"
    return ""


# --- the project --------------------------------------------------------------------------
class LabelStudioProject:
    """The feedback project in one Label Studio: found or created by exact title."""

    def __init__(self, client: LabelStudio, url: str, project_id: int, title: str) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.id = project_id
        self.title = title

    @property
    def web_url(self) -> str:
        return f"{self.url}/projects/{self.id}/data"

    @property
    def target(self) -> str:
        """Identity of where tasks live: when it changes, everything is delivered again."""
        return f"{self.url}#project={self.id}"

    @classmethod
    def connect(
        cls, url: str, api_key: str, title: str, *, timeout: float = 10.0, key: KeyOrigin | None = None
    ) -> LabelStudioProject:
        client = make_client(url, api_key, timeout, key)
        return cls(client, url, cls._get_or_create(client, title), title)

    @staticmethod
    def _get_or_create(client: LabelStudio, title: str) -> int:
        # `title=` is a case-insensitive substring filter: compare exactly ourselves.
        matches = [p for p in client.projects.list(title=title, page_size=100) if p.title == title]
        if matches:
            project = min((p for p in matches if p.id is not None), key=lambda p: int(p.id or 0))
            project_id = int(project.id or 0)
            config = project.label_config or ""
            current = _normalized(config) == _normalized(LABEL_CONFIG)
            if upgrade_label_config(client, project_id, config) or current:
                _unless_refused(lambda: backfill(client, project_id), project_id, NOT_BACKFILLED)
            return project_id
        project = client.projects.create(title=title, label_config=LABEL_CONFIG, **PROJECT_SETTINGS)
        assert project.id is not None
        project_id = int(project.id)
        _unless_refused(lambda: ensure_views(client, project_id), project_id, NO_VIEWS)
        return project_id

    # --- webhook ---
    def ensure_webhook(self, url: str, secret: str, known: int | None = None) -> int:
        """Register (or repair) this app's webhook on the project; returns its id.

        Several apps (one per DATA_DIR, each with its own URL and secret) may serve one
        project, so only this app's hook is touched: `known`, the id it registered before
        (kept in its own log), repaired in place, its URL included when the app moved (PORT,
        PUBLIC_URL). Without it (a first start, or that hook deleted in Label Studio), a hook
        to exactly `url` is taken over (nothing else can answer there: made by an earlier
        version, which kept no id), else one is made. Hooks of other URLs are left alone.
        """
        headers = {WEBHOOK_SECRET_HEADER: secret}
        hooks = [
            hook
            for hook in self.client.webhooks.list(project=str(self.id))
            if hook.project == self.id and hook.id is not None
        ]
        ours = next((hook for hook in hooks if known is not None and hook.id == known), None)
        ours = ours or next((hook for hook in hooks if hook.url == url), None)
        if ours is not None and ours.id is not None:
            if (
                ours.url != url
                or set(ours.actions or []) != set(WEBHOOK_ACTIONS)
                or (ours.headers or {}) != headers
                or not ours.is_active
                or not ours.send_payload
            ):
                self.client.webhooks.update(
                    id=ours.id,
                    url=url,
                    actions=WEBHOOK_ACTIONS,
                    headers=headers,
                    is_active=True,
                    send_payload=True,
                    send_for_all_actions=False,
                )
            return int(ours.id)
        hook = self.client.webhooks.create(
            url=url,
            project=self.id,
            actions=WEBHOOK_ACTIONS,  # type: ignore[arg-type]
            headers=headers,
            is_active=True,
            send_payload=True,
            send_for_all_actions=False,
        )
        assert hook.id is not None
        return int(hook.id)

    # --- tasks ---
    def find_task(self, exchange_id: str) -> RemoteTask | None:
        """The task carrying this exchange id, if Label Studio has one (checked before re-sending)."""
        query = {
            "filters": {
                "conjunction": "and",
                "items": [
                    {
                        "filter": "filter:tasks:data.exchange_id",
                        "operator": "equal",
                        "type": "String",
                        "value": exchange_id,
                    }
                ],
            }
        }
        tasks = [
            self._remote(t)
            for t in self.client.tasks.list(project=self.id, query=json.dumps(query), page_size=10)
        ]
        tasks = [t for t in tasks if t.exchange_id == exchange_id]
        return min(tasks, key=lambda t: t.id) if tasks else None

    def create_tasks(self, deliveries: Sequence[Delivery]) -> list[int]:
        """One import call for many rated exchanges, each with the user's prediction (if they rated it)."""
        request = [
            {
                "data": task_data(d.exchange, d.rating, d.comment, d.problems),
                "predictions": [
                    {"model_version": USER_MODEL_VERSION, "result": prediction_result(d.rating, d.problems)}
                ]
                if d.rating
                else [],
            }
            for d in deliveries
        ]
        response = self.client.projects.import_tasks(id=self.id, request=request, return_task_ids=True)  # type: ignore[arg-type]
        task_ids = _get(response, "task_ids")
        if not isinstance(task_ids, list) or len(task_ids) != len(deliveries):
            raise LabelStudioError(
                "Label Studio did not return the new task ids (an asynchronous import edition?); "
                "the next sync will look the tasks up by exchange id"
            )
        return [int(t) for t in task_ids]

    def update_task(self, delivery: Delivery, task_id: int, prediction_id: int | None) -> int | None:
        """A changed rating or comment: refresh the task data and the same task's user prediction.

        The comment reaches reviewers through the data (`user_feedback`); rewriting the
        prediction also takes the comment out of one made by an older version. With no rating
        (an answer only a reviewer rated, given its pre-rating later) only the data changes.
        """
        self.client.tasks.update(
            id=str(task_id),
            data=task_data(delivery.exchange, delivery.rating, delivery.comment, delivery.problems),
        )
        if delivery.rating is None:
            return prediction_id
        result = prediction_result(delivery.rating, delivery.problems)
        if prediction_id is None:
            prediction_id = self._user_prediction(task_id)
        if prediction_id is not None:
            try:
                self.client.predictions.update(
                    id=prediction_id, result=result, model_version=USER_MODEL_VERSION
                )
                return prediction_id
            except ApiError as exc:
                if exc.status_code != 404:
                    raise
        created = self.client.predictions.create(
            task=task_id, result=result, model_version=USER_MODEL_VERSION
        )
        assert created.id is not None
        return int(created.id)

    # --- verdicts given in the app ---
    def find_verdict(
        self,
        task_id: int,
        import_ids: set[int],
        same_as: tuple[Rating, str, Sequence[str]] | None = None,
        taken: Callable[[int], object] = lambda _: None,
    ) -> int | None:
        """The annotation an earlier try made for one of these inline verdict rows, if any; else,
        with `same_as`, one that gives that verdict (rating, comment, problems) and is not `taken`.

        The second is for a verdict carried back into a project it came from (A → B → A): its
        reviewer's annotation is still there, and a copy beside it would show two. None too when
        the task itself is gone (404): the verdict then goes to a new one.
        """
        try:
            annotations = list(self.client.annotations.list(id=task_id))
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            return None
        for annotation in annotations:
            if annotation.import_id in import_ids and annotation.id is not None:
                return int(annotation.id)
        if same_as is not None:
            rating, comment, problems = same_as
            for annotation in annotations:
                if annotation.id is None or taken(int(annotation.id)):
                    continue
                verdict = parse_annotation(annotation, task_id)
                if (verdict.rating, verdict.comment, set(verdict.problems)) == (
                    rating,
                    comment,
                    set(problems),
                ):
                    return verdict.annotation_id
        return None

    def send_verdict(
        self,
        task_id: int,
        annotation_id: int | None,
        rating: Rating,
        comment: str,
        import_id: int,
        problems: Sequence[str] = (),
    ) -> int | None:
        """Write a Review-tab verdict into its annotation; None when that annotation is gone (404).

        `annotation_id=None` creates it. The annotation's `import_id` is the verdict's row id in
        the log, so the webhook and pull that bring it back are recognised as the app's own.
        It is made by the API key's user, whom Label Studio shows as its annotator.
        """
        result = verdict_result(rating, comment, problems)
        if annotation_id is None:
            created = self.client.annotations.create(
                id=task_id, result=result, import_id=import_id, was_cancelled=False
            )
            assert created.id is not None
            return int(created.id)
        try:
            self.client.annotations.update(
                id=annotation_id, result=result, import_id=import_id, was_cancelled=False
            )
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            return None
        return annotation_id

    def user_predictions(self, task_ids: Sequence[int]) -> dict[int, int]:
        """Task id → id of its user prediction, for many tasks in one paged call."""
        query = {"selectedItems": {"all": False, "included": list(task_ids)}}
        found: dict[int, int] = {}
        for task in self.client.tasks.list(project=self.id, query=json.dumps(query), page_size=100):
            remote = self._remote(task)
            if remote.prediction_id is not None:
                found[remote.id] = remote.prediction_id
        return found

    def _user_prediction(self, task_id: int) -> int | None:
        ids = [
            int(p.id)
            for p in self.client.predictions.list(task=task_id)
            if p.model_version == USER_MODEL_VERSION and p.id is not None
        ]
        return min(ids) if ids else None

    def changed_tasks(self, since: str | None, overlap: float = 2.0) -> Iterator[RemoteTask]:
        """Tasks updated after `since` (annotations bump a task's updated_at), oldest first."""
        items = []
        if since:
            start = datetime.fromisoformat(since.replace("Z", "+00:00")) - timedelta(seconds=overlap)
            items.append(
                {
                    "filter": "filter:tasks:updated_at",
                    "operator": "greater",
                    "type": "Datetime",
                    "value": iso(start),
                }
            )
        query = {"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:updated_at"]}
        for task in self.client.tasks.list(project=self.id, query=json.dumps(query), page_size=100):
            yield self._remote(task)

    @staticmethod
    def _remote(task: Any) -> RemoteTask:
        data = _get(task, "data") or {}
        updated = _get(task, "updated_at")
        predictions = _get(task, "predictions") or []
        user_predictions = [
            int(_get(p, "id"))
            for p in predictions
            if _get(p, "model_version") == USER_MODEL_VERSION and _get(p, "id")
        ]
        return RemoteTask(
            id=int(_get(task, "id")),
            exchange_id=data.get("exchange_id") if isinstance(data, Mapping) else None,
            updated_at=iso(updated) if updated else None,
            annotations=list(_get(task, "annotations") or []),
            prediction_id=min(user_predictions) if user_predictions else None,
        )
