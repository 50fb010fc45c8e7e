"""Deliver ratings to Label Studio and bring reviewers' verdicts back, off the request path.

`SyncWorker` drains the log's outbox in a background thread (woken by each new
rating, otherwise every SYNC_INTERVAL seconds) and pulls annotations changed
since the last pull every LABEL_STUDIO_PULL_INTERVAL seconds, so a missed
webhook loses nothing. The chat only ever writes SQLite: Label Studio being
down, slow or refusing the key shows up in `status()`, never in a rating call.

Exactly once: a task is created in one import call after its outbox row is
marked `verify` (committed first); any retry of a row so marked looks the
exchange id up in Label Studio before sending, and a changed rating updates the
task it already has. Verdicts saved in the app's Review tab go out the same
way, after the ratings of the cycle: each into an annotation on its answer's
task (made for it if no user rated the answer), whose `import_id` lets the
webhook and the pull tell the app's own annotation from a reviewer's.

A project deleted in Label Studio, or another one set, is no reviewer taking
verdicts back: the worker makes the project again (or uses the new one), sends
every rated answer again, and makes every standing verdict, a reviewer's or the
Review tab's, again as an annotation there (`FeedbackLog.reset_delivery_target`);
an annotation a reviewer deletes in the project in use still withdraws its verdict.

The app's worker registers its own webhook on the project and keeps its id in
the log, so apps of other DATA_DIRs on the same project keep theirs; `python -m
feedback sync` registers none (`register_webhook=False`).

One sync cycle runs at a time per DATA_DIR (a file lock), so `python -m
feedback sync` beside a running app cannot double-send either.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import httpx
from label_studio_sdk.core.api_error import ApiError

from feedback.config import (
    KeyOrigin,
    key_origin,
    label_studio_configured,
    missing_settings,
    webhook_secret,
    webhook_url,
)
from feedback.labelstudio import (
    LabelStudioError,
    LabelStudioProject,
    describe_error,
    is_connection_problem,
    is_refusal,
    make_client,
    parse_annotation,
    webhook_problem,
)
from feedback.log import CarryDelivery, Delivery, Exchange, FeedbackLog, ReviewDelivery, SyncStatus, now_iso
from settings import Settings, get_settings

log = logging.getLogger(__name__)

# Changed ratings are one PATCH and one prediction update each: a few in parallel keep the
# worker from crawling on a slow server, without flooding it.
UPDATE_CONCURRENCY = 4
# A webhook names its reviewer by Label Studio's user id only; a pull this long after it (Label
# Studio is still inside the request that sent it) brings the reviewer's name.
PULL_AFTER_WEBHOOK = 2.0
# `python -m feedback status` asks Label Studio once, and a person waits for it: at most this long
# (or LABEL_STUDIO_TIMEOUT, when shorter).
CHECK_TIMEOUT = 5.0
# The app looks at its webhook this often (one GET), and registers it again if it is gone or changed.
WEBHOOK_CHECK_INTERVAL = 300.0


@dataclass
class SyncReport:
    """What one sync cycle did."""

    configured: bool = True
    created: int = 0  # new tasks
    updated: int = 0  # changed ratings pushed to existing tasks
    found: int = 0  # tasks Label Studio already had (re-send avoided)
    reviews: int = 0  # Review-tab verdicts written into Label Studio annotations
    carried: int = 0  # verdicts of a project left behind (deleted, or another set) made again in this one
    pulled: int = 0  # reviewer verdict changes brought back
    pending: int = 0  # still waiting after the cycle
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.configured and not self.error


@dataclass(frozen=True)
class ConnectionCheck:
    """Whether Label Studio answers the configured URL and key right now."""

    url: str
    ok: bool
    user: str = ""  # whom the key belongs to (email, else username or id), when it is accepted
    error: str = ""  # what is wrong and what to do, when it is not

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_connection(settings: Settings, timeout: float = CHECK_TIMEOUT) -> ConnectionCheck:
    """Ask Label Studio whom the configured key belongs to: one GET, no project touched. Never raises.

    The log's delivery state says what the last sync did, maybe with other settings or a
    key revoked since: "all 3 delivered" beside a key Label Studio refuses. Only a call
    with these settings tells whether they work now.
    """
    url = settings.label_studio_url.strip().rstrip("/")
    timeout = min(settings.label_studio_timeout, timeout)
    key = key_origin(settings)
    try:
        me = make_client(url, settings.label_studio_api_key.strip(), timeout, key).users.whoami()
    except Exception as exc:
        return ConnectionCheck(url, False, error=_check_error(exc, url, timeout, key))
    return ConnectionCheck(url, True, user=me.email or me.username or str(me.id))


def _check_error(exc: Exception, url: str, timeout: float, key: KeyOrigin) -> str:
    """`describe_error`, minus what fits a sync but not a one-off check (retrying, the project)."""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return (
            f"Label Studio at {url} did not answer within {timeout:g} s — is it starting or overloaded? "
            "Try again in a moment"
        )
    if isinstance(exc, ApiError) and exc.status_code == 404:
        return f"{url} answered, but has no Label Studio API (404) — is LABEL_STUDIO_URL right?"
    return describe_error(exc, url, timeout, key=key)


@dataclass(frozen=True)
class WebhookCheck:
    """Whether the webhook this DATA_DIR's app registered is in Label Studio and calls it."""

    url: str  # the URL the app registered ("" when it registered none)
    registered: bool
    detail: str  # a line for people: the hook, or what is wrong with it and what that means

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_webhook(settings: Settings, state: dict[str, str], timeout: float = CHECK_TIMEOUT) -> WebhookCheck:
    """Look up the hook the app of this DATA_DIR registered (its id is in the log's state). Never raises.

    The state says which hook the app made, not whether it is still there: deleted in Label
    Studio, or replaced by an earlier version of another app on the same project, it leaves
    verdicts to the pull. `python -m feedback status` says which.
    """
    url, hook_id, target = state.get("webhook", ""), state.get("webhook_id", ""), state.get("target", "")
    pull = f"verdicts come back by the pull only (every {settings.label_studio_pull_interval:g} s)"
    again = f"until the app registers it again (within {WEBHOOK_CHECK_INTERVAL / 60:g} minutes while it runs)"
    if not url:
        return WebhookCheck(
            "", False, f"none registered by this data dir's app (it registers one when it runs); {pull}"
        )
    if not hook_id.isdigit():
        return WebhookCheck(
            url,
            False,
            f"{url} (not checked: registered by an earlier version, the app records its id when it starts)",
        )
    base, _, project = target.rpartition("#project=")
    if (
        base != settings.label_studio_url.strip().rstrip("/")
        or not project.isdigit()
        or (state.get("webhook_target") != target)
    ):
        return WebhookCheck(
            url,
            False,
            f"{url} (id {hook_id}) was registered for {state.get('webhook_target') or 'another project'}; {pull} {again}",
        )
    try:
        client = make_client(
            base, settings.label_studio_api_key.strip(), min(settings.label_studio_timeout, timeout)
        )
        problem = webhook_problem(client, int(project), int(hook_id), url)
    except Exception as exc:
        return WebhookCheck(
            url,
            False,
            f"{url} (id {hook_id}) could not be checked: {_check_error(exc, base, timeout, key_origin(settings))}",
        )
    if problem:
        return WebhookCheck(url, False, f"{url} (id {hook_id}) is not registered: {problem}; {pull} {again}")
    return WebhookCheck(url, True, f"{url} (id {hook_id}, registered in Label Studio)")


class SyncWorker:
    """Background delivery to Label Studio for one `FeedbackLog`.

    Without LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY it does nothing and `status()`
    says feedback is kept locally only.
    """

    def __init__(
        self,
        feedback_log: FeedbackLog,
        settings: Settings | None = None,
        *,
        interval: float | None = None,
        pull_interval: float | None = None,
        batch_size: int = 100,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        register_webhook: bool = True,
        webhook_check_interval: float = WEBHOOK_CHECK_INTERVAL,
    ) -> None:
        self.log = feedback_log
        self.settings = settings or get_settings()
        self.interval = self.settings.sync_interval if interval is None else interval
        self.pull_interval = (
            self.settings.label_studio_pull_interval if pull_interval is None else pull_interval
        )
        self.batch_size = batch_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        # The app's worker registers its webhook (`python -m feedback sync` does not: see __main__).
        self.register_webhook = register_webhook
        self.webhook_check_interval = webhook_check_interval
        self._webhook_checked = 0.0  # time.monotonic() of the last look at the webhook
        self.configured = label_studio_configured(self.settings)
        self.url = self.settings.label_studio_url.rstrip("/")
        self.key = key_origin(self.settings)  # where the API key came from, for errors about it
        self._project: LabelStudioProject | None = None
        self._cycle = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._pull_at: float | None = None  # time.monotonic() of a pull asked for by `pull_soon`
        self._lock_path = Path(self.log.path).with_name(Path(self.log.path).name + ".sync.lock")
        # Which settings this worker syncs with (see owns_status); hashed: the key is not stored.
        self.identity = hashlib.sha256(
            "\n".join(
                (self.url, self.settings.label_studio_api_key, self.settings.label_studio_project)
            ).encode()
        ).hexdigest()[:16]
        self.log.add_listener(self.wake)

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (no-op when Label Studio is not configured or already started)."""
        if not self.configured:
            log.info(
                "Label Studio not configured (%s unset): feedback is kept locally only",
                " and ".join(missing_settings(self.settings)),
            )
            return
        if self._thread and self._thread.is_alive():
            return
        self.log.set_state(status_owner=self.identity)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="feedback-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the thread; a rating in flight stays in the outbox for next time."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None
        self._stop.clear()  # flush() and a later start() work again

    def wake(self) -> None:
        """A new rating: deliver soon (called by the log after each commit; never blocks)."""
        self._wake.set()

    def pull_soon(self, delay: float = PULL_AFTER_WEBHOOK) -> None:
        """Pull `delay` seconds from now, not at the next LABEL_STUDIO_PULL_INTERVAL (never blocks).

        The webhook calls it after storing a verdict: the pull renames the reviewer from
        a bare user id ("1") to who they are ("admin@example.com") within seconds.
        """
        now = time.monotonic()
        asked = self._pull_at
        # An earlier request that is already due may be in the pull running now, which can have
        # missed this verdict: this one then gets its own pull.
        if asked is None or now + delay < asked or asked <= now:
            self._pull_at = now + delay
        self._wake.set()

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def owns_status(self) -> bool:
        """May this worker's cycles write the shared last error / last success?

        The background worker (the app's) claims the status when it starts. A one-off
        run with other settings (`LABEL_STUDIO_API_KEY=wrong python -m feedback sync`)
        prints its own outcome but must not make the app show an error it does not
        have, or hide one it has. Same settings, or no app ever started: it may.
        """
        owner = self.log.get_state().get("status_owner")
        return owner is None or owner == self.identity

    def status(self) -> SyncStatus:
        return self.log.sync_status(missing=missing_settings(self.settings))

    def flush(self, timeout: float = 60.0, *, pull: bool = True) -> SyncReport:
        """Sync now in the caller's thread until nothing is due (or an error, or `timeout`).

        The caller reports `error` of the result: it is not logged as a warning too.
        """
        deadline = time.monotonic() + timeout
        total = SyncReport(configured=self.configured)
        first = True
        while True:
            report = self.sync_once(pull=pull and first, force=first, log_error=False)
            first = False
            for name in ("created", "updated", "found", "reviews", "carried", "pulled"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.pending, total.error, total.configured = report.pending, report.error, report.configured
            if not report.ok or not report.pending or time.monotonic() > deadline:
                return total
            wait = self.log.next_due_in()
            if wait is None:
                return total
            if wait > 0:
                time.sleep(min(wait, max(0.0, deadline - time.monotonic())))

    # --- one cycle ---------------------------------------------------------------------------
    def sync_once(self, *, pull: bool = True, force: bool = False, log_error: bool = True) -> SyncReport:
        """Push what is due, then (if `pull`) pull changed annotations. Never raises.

        `log_error=False`: the caller shows `report.error` itself (`flush`, for `python -m
        feedback sync`), so the log gets it at debug level rather than a second copy on stderr.
        """
        report = SyncReport(configured=self.configured)
        if not self.configured:
            report.pending = self.log.pending_count()
            report.error = (
                "Label Studio is not configured ("
                + " and ".join(missing_settings(self.settings))
                + " unset): "
                f"feedback is kept locally only in {self.log.path}"
            )
            return report
        with self._cycle, self._file_lock():
            try:
                project = self._connect()
                if self.register_webhook and (
                    time.monotonic() - self._webhook_checked >= self.webhook_check_interval
                ):
                    self._register_webhook(project)  # deleted or edited in Label Studio since: repaired
                if force:
                    self.log.retry_now()  # by hand: do not wait out the backoff
                self._push(project, report)
                self._carry(project, report)  # before Review-tab changes that go into those annotations
                self._push_reviews(project, report)
                if pull:
                    report.pulled = self._pull(project)
                if self.owns_status():
                    self.log.set_state(last_success_at=now_iso(), last_error=None, last_error_at=None)
                self._failures = 0
            except Exception as exc:
                report.error = self._describe(exc, self.settings.label_studio_timeout)
                self._failures += 1
                if (
                    is_connection_problem(exc)
                    or isinstance(exc, LabelStudioError)
                    or (isinstance(exc, ApiError) and exc.status_code == 404)
                ):
                    self._project = None  # set up again (project, webhook) once it answers
                log.log(logging.WARNING if log_error else logging.DEBUG, "feedback sync: %s", report.error)
                try:
                    if self.owns_status():
                        self.log.set_state(last_error=report.error, last_error_at=now_iso())
                except Exception:
                    log.exception("could not record the sync error")
            report.pending = self.log.pending_count()
        return report

    def _describe(self, exc: BaseException, timeout: float | None = None) -> str:
        """`describe_error` for this worker's Label Studio, naming where its API key came from."""
        return describe_error(exc, self.url, timeout, key=self.key)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """One sync cycle per DATA_DIR across processes (app worker and CLI)."""
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _connect(self) -> LabelStudioProject:
        if self._project is not None:
            return self._project
        project = LabelStudioProject.connect(
            self.url,
            self.settings.label_studio_api_key,
            self.settings.label_studio_project,
            timeout=self.settings.label_studio_timeout,
            key=self.key,
        )
        state = self.log.get_state()
        previous = state.get("target")
        if previous and previous != project.target:
            moved = self.log.reset_delivery_target()
            log.warning(
                "Label Studio project changed (%s -> %s): delivering %d exchanges again, and making "
                "%d reviewers' verdicts again as annotations",
                previous,
                project.target,
                moved,
                self.log.carry_count(),
            )
            self.log.set_state(pull_cursor=None)
        self.log.set_state(target=project.target, project_url=project.web_url)
        if self.register_webhook:
            self._register_webhook(project)
        self._project = project
        return project

    def _register_webhook(self, project: LabelStudioProject) -> None:
        """This DATA_DIR's hook: the one it registered before (its id is in the log), else a new one."""
        self._webhook_checked = time.monotonic()
        url = webhook_url(self.settings)
        state = self.log.get_state()
        known = state.get("webhook_id", "")
        try:
            hook_id = project.ensure_webhook(
                url,
                webhook_secret(self.settings),
                int(known) if known.isdigit() and state.get("webhook_target") == project.target else None,
            )
        except (ApiError, LabelStudioError) as exc:
            note = (
                f"webhook to {url} not registered ({self._describe(exc)}); "
                "verdicts come back by periodic pull only"
            )
            self.log.set_state(webhook="", webhook_note=note)
            log.warning("feedback: %s", note)
            return
        self.log.set_state(
            webhook=url, webhook_id=str(hook_id), webhook_target=project.target, webhook_note=None
        )

    # --- push ---------------------------------------------------------------------------------
    def _push(self, project: LabelStudioProject, report: SyncReport) -> None:
        while not self._stop.is_set():
            batch = self.log.due_deliveries(limit=self.batch_size)
            if not batch:
                return
            done: set[str] = set()
            try:
                batch = self._verify(project, batch, report)
                new = [d for d in batch if d.task_id is None]
                if new:
                    self._create(project, new, report, done)
                self._update(project, [d for d in batch if d.task_id is not None], report, done)
            except Exception as exc:
                timeout = self.settings.label_studio_timeout
                if isinstance(exc, httpx.TimeoutException):
                    # Label Studio may still be working on it: give it time before looking the task up.
                    base, cap = max(self.backoff_base, 2 * timeout), max(self.backoff_cap, 4 * timeout)
                else:
                    base, cap = self.backoff_base, self.backoff_cap
                failed = [d.exchange.id for d in batch if d.exchange.id not in done]
                self.log.mark_failed(failed, self._describe(exc, timeout), base=base, cap=cap)
                raise

    def _update(
        self, project: LabelStudioProject, existing: list[Delivery], report: SyncReport, done: set[str]
    ) -> None:
        """Changed ratings: refresh each task and its user prediction, a few calls at a time."""
        if not existing:
            return
        unknown = [
            d.task_id for d in existing if d.prediction_id is None and d.task_id is not None and d.rating
        ]
        predictions = project.user_predictions(unknown) if unknown else {}

        def one(delivery: Delivery) -> tuple[int, int | None]:
            assert delivery.task_id is not None
            prediction_id = delivery.prediction_id or predictions.get(delivery.task_id)
            try:
                return delivery.task_id, project.update_task(delivery, delivery.task_id, prediction_id)
            except ApiError as exc:
                if exc.status_code != 404:
                    raise
                (task_id,) = project.create_tasks([delivery])  # deleted in Label Studio: send it again
                return task_id, None

        first_error: Exception | None = None
        with ThreadPoolExecutor(max_workers=UPDATE_CONCURRENCY) as pool:
            futures = {pool.submit(one, d): d for d in existing}
            for future, delivery in futures.items():
                try:
                    task_id, prediction_id = future.result()
                except Exception as exc:
                    first_error = first_error or exc
                    continue
                self.log.mark_delivered(
                    delivery.exchange.id,
                    delivery.wanted,
                    task_id,
                    prediction_id,
                    pre_rated_at=delivery.exchange.pre_rated_at,
                )
                done.add(delivery.exchange.id)
                report.updated += 1
        if first_error is not None:
            raise first_error

    def _verify(
        self, project: LabelStudioProject, batch: Sequence[Delivery], report: SyncReport
    ) -> list[Delivery]:
        """Rows that may already have a task (an earlier try, lost answer): look them up first."""
        out = []
        for delivery in batch:
            if delivery.task_id is None and delivery.verify:
                task = project.find_task(delivery.exchange.id)
                if task is not None:
                    self.log.set_task(delivery.exchange.id, task.id, task.prediction_id)
                    delivery = replace(delivery, task_id=task.id, prediction_id=task.prediction_id)
                    report.found += 1
            out.append(delivery)
        return out

    def _create(
        self, project: LabelStudioProject, new: list[Delivery], report: SyncReport, done: set[str]
    ) -> None:
        self.log.mark_verify([d.exchange.id for d in new])  # committed before the call that creates them
        try:
            task_ids = project.create_tasks(new)
        except httpx.ConnectError:
            # Never connected, so nothing was created: no need to look these up next time.
            self.log.mark_verify([d.exchange.id for d in new], verify=False)
            raise
        except ApiError as exc:
            # One bad row must not hold back the rest: on a 400, send them one by one.
            if exc.status_code != 400 or len(new) == 1:
                raise
            for delivery in new:
                try:
                    (task_id,) = project.create_tasks([delivery])
                except ApiError as one:
                    if one.status_code != 400:
                        raise
                    self.log.mark_failed([delivery.exchange.id], self._describe(one), cap=3600)
                    done.add(delivery.exchange.id)
                    continue
                self.log.mark_delivered(
                    delivery.exchange.id,
                    delivery.wanted,
                    task_id,
                    pre_rated_at=delivery.exchange.pre_rated_at,
                )
                done.add(delivery.exchange.id)
                report.created += 1
            return
        for delivery, task_id in zip(new, task_ids, strict=True):
            self.log.mark_delivered(
                delivery.exchange.id, delivery.wanted, task_id, pre_rated_at=delivery.exchange.pre_rated_at
            )
            done.add(delivery.exchange.id)
            report.created += 1

    def _push_reviews(self, project: LabelStudioProject, report: SyncReport) -> None:
        """Review-tab verdicts: each into its annotation, created once (see `mark_review_verify`)."""
        self._send_due(
            self.log.due_reviews,
            lambda delivery: self._send_review(project, delivery, report),
            lambda delivery: delivery.exchange.id,
            report,
            "reviews",
        )

    def _send_due(
        self,
        due: Callable[..., Sequence[Any]],
        send: Callable[[Any], None],
        key: Callable[[Any], str],
        report: SyncReport,
        kind: Literal["reviews", "carried"],
    ) -> None:
        """Send what `due` lists, batch by batch, counting each sent in `report.<kind>`.

        One item Label Studio refuses is retried hourly while the others still go; any other
        failure backs off the rest of the batch (their `key`s in the log) and ends the sync.
        """
        flag = {"reviews": True} if kind == "reviews" else {"carries": True}
        while not self._stop.is_set():
            batch = due(limit=self.batch_size)
            if not batch:
                return
            for n, item in enumerate(batch):
                try:
                    send(item)
                except Exception as exc:
                    if isinstance(exc, ApiError) and is_refusal(exc):
                        self.log.mark_failed([key(item)], self._describe(exc), cap=3600, **flag)
                        continue
                    error = self._describe(exc, self.settings.label_studio_timeout)
                    rest = [key(i) for i in batch[n:]]
                    self.log.mark_failed(rest, error, base=self.backoff_base, cap=self.backoff_cap, **flag)
                    raise
                setattr(report, kind, getattr(report, kind) + 1)

    def _send_review(self, project: LabelStudioProject, delivery: ReviewDelivery, report: SyncReport) -> None:
        exchange = delivery.exchange
        task_id = exchange.task_id or self._review_task(project, exchange, report)
        annotation_id = delivery.annotation_id
        if annotation_id is None and delivery.verify:
            annotation_id = project.find_verdict(task_id, self.log.inline_verdict_ids(exchange.id))
        args = (delivery.rating, delivery.comment, delivery.wanted, delivery.problems)
        if annotation_id is not None:
            annotation_id = project.send_verdict(task_id, annotation_id, *args)
        if annotation_id is None:  # never made, or deleted in Label Studio: make it
            self.log.mark_review_verify(exchange.id)
            annotation_id, task_id = self._new_verdict(project, exchange, task_id, args, report)
        self.log.mark_review_delivered(exchange.id, delivery.wanted, annotation_id, task_id)

    def _new_verdict(
        self, project: LabelStudioProject, exchange: Exchange, task_id: int, args: tuple, report: SyncReport
    ) -> tuple[int, int]:
        """(annotation id, task id) of a new annotation with the verdict `args`, on the answer's task,
        made again first if it was deleted in Label Studio."""
        try:
            return project.send_verdict(task_id, None, *args), task_id
        except ApiError as exc:
            if exc.status_code != 404:
                raise
        task_id = self._review_task(project, exchange, report, look=False)  # the task was deleted
        return project.send_verdict(task_id, None, *args), task_id

    def _carry(self, project: LabelStudioProject, report: SyncReport) -> None:
        """Verdicts of a project left behind: each made again as an annotation of this one, once."""
        self._send_due(
            self.log.due_carries,
            lambda carry: self._send_carry(project, carry, report),
            lambda carry: carry.annotation_id,
            report,
            "carried",
        )

    def _send_carry(self, project: LabelStudioProject, carry: CarryDelivery, report: SyncReport) -> None:
        """One verdict into an annotation of the new project, by the API key's user, with the verdict's
        row id as `import_id`: read back, it is the same verdict (the reviewer's name is kept)."""
        exchange = carry.exchange
        task_id = exchange.task_id or self._review_task(project, exchange, report)
        # An earlier try's copy, or, in a project the verdict was carried out of before, its own
        # annotation still there: taken back rather than copied beside it.
        annotation_id = project.find_verdict(
            task_id,
            self.log.stream_rows(carry.annotation_id),
            same_as=(carry.rating, carry.comment, carry.problems),
            taken=self.log.annotation_exchange,
        )
        if annotation_id is None:
            args = (carry.rating, carry.comment, carry.row, carry.problems)
            annotation_id, task_id = self._new_verdict(project, exchange, task_id, args, report)
        self.log.mark_carried(carry.annotation_id, annotation_id, task_id)

    def _review_task(
        self, project: LabelStudioProject, exchange: Exchange, report: SyncReport, *, look: bool = True
    ) -> int:
        """The task of an answer Label Studio has none of (no user rated it): found, or made now."""
        task = project.find_task(exchange.id) if look else None
        if task is not None:
            self.log.set_task(exchange.id, task.id, task.prediction_id)
            report.found += 1
            return task.id
        self.log.mark_task_verify(exchange.id)
        rating = exchange.user_rating
        said = (exchange.user_comment, exchange.user_problems) if rating else ("", ())
        rated = Delivery(exchange, 0, rating, said[0], None, None, True, 0, said[1])
        (task_id,) = project.create_tasks([rated])
        # A pre-rating stored while the task was on its way is sent by the next sync.
        self.log.set_task(exchange.id, task_id, pre_rated_at=exchange.pre_rated_at)
        report.created += 1
        return task_id

    # --- pull ---------------------------------------------------------------------------------
    def _pull(self, project: LabelStudioProject) -> int:
        """Bring back annotations of tasks changed since the last pull (idempotent)."""
        state = self.log.get_state()
        cursor = state.get("pull_cursor")
        newest = cursor
        changes = 0
        for task in project.changed_tasks(cursor):
            if task.updated_at and (newest is None or task.updated_at > newest):
                newest = task.updated_at
            exchange_id = task.exchange_id or self.log.task_exchange(task.id)
            if not exchange_id or not self.log.has_exchange(exchange_id):
                continue  # a task this app did not create
            seen = set()
            for annotation in task.annotations:
                verdict = parse_annotation(annotation, task.id)
                seen.add(verdict.annotation_id)
                if verdict.save(self.log, exchange_id, source="pull"):
                    changes += 1
            for gone in self.log.live_annotations(exchange_id) - seen:
                if self.log.review(
                    exchange_id, None, source="pull", annotation_id=gone, task_id=task.id, deleted=True
                ):
                    changes += 1
        self.log.set_state(pull_cursor=newest, last_pull_at=now_iso())
        return changes

    # --- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        next_pull = 0.0
        retry_at = 0.0
        while not self._stop.is_set() and not self.log.closed:
            try:
                now = time.monotonic()
                asked = self._pull_at
                if now >= retry_at:
                    pull = now >= next_pull or (asked is not None and now >= asked)
                    report = self.sync_once(pull=pull)
                    if report.ok:
                        retry_at = 0.0
                        if pull:
                            next_pull = time.monotonic() + self.pull_interval
                            if self._pull_at == asked:  # not asked again meanwhile
                                self._pull_at = None
                    else:
                        delay = min(self.backoff_cap, self.backoff_base * 2 ** (self._failures - 1))
                        retry_at = time.monotonic() + delay
                timeout = self.interval
                if retry_at:
                    timeout = max(0.05, retry_at - time.monotonic())
                else:
                    due = self.log.next_due_in()
                    if due is not None:
                        timeout = min(timeout, max(0.05, due))
                    pull_at = next_pull if self._pull_at is None else min(next_pull, self._pull_at)
                    timeout = min(timeout, max(0.05, pull_at - time.monotonic()))
            except Exception:
                if self.log.closed:
                    return  # the app closed the log before stopping us: nothing left to do
                log.exception("feedback sync worker: unexpected error; retrying")
                timeout = self.backoff_cap
            self._wake.wait(timeout)
            self._wake.clear()
