"""The values the feedback log hands out: exchanges, rating events, accuracy rows, sync status."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Rating = Literal["good", "bad"]
Verdict = Literal["good", "bad", "unrated"]

# What a reviewer can say was wrong with a Bad answer, key → the words Label Studio and the Review
# tab show. Each points at a different fix: the passages found (retrieval, the docs), what the
# model made of them (the prompt, the model), or the abstain verdict. Keys are stored, in this
# order; a label is never stored, so its wording can change.
PROBLEMS: dict[str, str] = {
    "wrong_sources": "Wrong passages: the sources don't answer it",
    "unsupported": "Says what the sources don't",
    "incomplete": "Incomplete",
    "unclear": "Unclear or badly written",
    "should_abstain": "Should have said the docs don't cover it",
    "false_abstain": "The docs do cover it",
}

# What a user can say was wrong after a thumbs down, in their words: the problems a user can see
# from the answer alone (a reviewer confirms them in Label Studio, where they come pre-ticked).
USER_PROBLEMS: dict[str, str] = {
    "wrong_sources": "Not what I asked",
    "unsupported": "Wrong or made up",
    "incomplete": "Incomplete",
    "unclear": "Hard to understand",
    "false_abstain": "The docs do cover this",
}

# Where each problem points a maintainer (the report's last column).
PROBLEM_FIX: dict[str, str] = {
    "wrong_sources": "retrieval, or a gap in the docs (Review tab: what the docs don't answer)",
    "unsupported": "the prompt or the model: it went beyond the excerpts",
    "incomplete": "the prompt, or retrieval missing the rest of the page",
    "unclear": "the prompt or the model",
    "should_abstain": "ABSTAIN_THRESHOLD (raise it), or the prompt",
    "false_abstain": "ABSTAIN_THRESHOLD (lower it), or retrieval",
}


def parse_problems(values: object) -> tuple[str, ...]:
    """Problem keys in `PROBLEMS` order, from keys, labels (any case) or a comma-joined string.

    Raises ValueError naming the choices for anything else: a typo must not drop a
    reviewer's finding silently.
    """
    if values is None or values == "":
        return ()
    items = values.split(",") if isinstance(values, str) else list(values)  # type: ignore[call-overload]
    by_name = {k: k for k in PROBLEMS} | {label.lower(): k for k, label in PROBLEMS.items()}
    found = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        key = by_name.get(text.lower()) or by_name.get(text.lower().replace("-", "_").replace(" ", "_"))
        if key is None:
            raise ValueError(f"unknown problem {text!r}: use {', '.join(PROBLEMS)}")
        found.add(key)
    return tuple(k for k in PROBLEMS if k in found)


def problem_words(keys: Sequence[str], labels: Mapping[str, str] = PROBLEMS) -> str:
    """Problems in a few words each, for a table cell or a sentence: "wrong passages; incomplete".

    Each label up to its colon, its first letter lowered; `labels=USER_PROBLEMS` for what a
    user ticked, in their words ("not what I asked").
    """
    words = (labels[k].split(":")[0] for k in keys if k in labels)
    return "; ".join(w[:1].lower() + w[1:] for w in words)


# The prompt version an exchange is logged with when the docs were found silent: the canned reply
# ("the docs don't seem to cover this"), filled from qa/prompts/abstain.md (`abstain-v2`, ...)
# without asking a model. `qa.prompts.ABSTAIN` names that prompt; feedback knows nothing of qa.
ABSTAIN_VERSION_PREFIX = "abstain-"


def stored_problems(text: str | None) -> tuple[str, ...]:
    """The log's comma-joined keys as a tuple; a key this version does not know is left out."""
    stored = set((text or "").split(","))
    return tuple(k for k in PROBLEMS if k in stored)


@dataclass(frozen=True)
class Exchange:
    """An answer as the log knows it now, with its current ratings."""

    id: str
    time: str
    session: str
    question: str
    standalone_question: str
    answer: str
    retrieved: list[dict[str, Any]]
    cited: list[dict[str, Any]]
    prompt_version: str
    model: str
    docs_commit: str
    latency_ms: int | None
    reused_from: str | None = None  # the exchange whose reviewer verdict this answer was given with
    reused_verdict: Rating | None = None  # that verdict
    # approved answers to similar questions whose cited passages this one was ranked with
    helped_by: list[str] = field(default_factory=list)
    # answers to similar questions rejected for wrong passages whose passages this one ranked lower
    lowered_by: list[str] = field(default_factory=list)
    pre_rating: Rating | None = None  # a model's hint for reviewers (qa.judge), never a verdict
    pre_rating_reason: str | None = None
    pre_rating_model: str | None = None
    pre_rated_at: str | None = None
    pre_rating_prompt: str | None = None  # the judge prompt's version (judge-v1)
    user_rating: Rating | None = None
    user_comment: str = ""
    user_problems: tuple[str, ...] = ()  # what the user ticked after a thumbs down (`USER_PROBLEMS` keys)
    user_rated_at: str | None = None
    reviewer_rating: Rating | None = None
    reviewer_comment: str = ""
    reviewer_problems: tuple[str, ...] = ()  # what the reviewer found wrong (`PROBLEMS` keys)
    reviewer_source: str | None = None
    reviewer: str = ""
    reviewed_at: str | None = None
    verdict: Rating | None = None  # the reviewer's when there is one, else the user's
    verdict_source: Literal["reviewer", "user"] | None = None
    task_id: int | None = None  # Label Studio task, once delivered
    sync: Literal["local", "pending", "delivered"] = "local"

    @classmethod
    def from_row(cls, row: sqlite3.Row | Mapping[str, Any]) -> Exchange:
        data = dict(row)
        data.pop("seq", None)
        data["retrieved"] = json.loads(data.pop("retrieved_json") or "[]")
        data["cited"] = json.loads(data.pop("cited_json") or "[]")
        data["helped_by"] = json.loads(data.get("helped_by") or "[]")
        data["lowered_by"] = json.loads(data.get("lowered_by") or "[]")
        data["reviewer_problems"] = stored_problems(data.get("reviewer_problems"))
        data["user_problems"] = stored_problems(data.get("user_problems"))
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def abstained(self) -> bool:
        """Whether the reply was the canned "the docs don't cover this" (no model wrote it).

        The chat logs such a reply with the abstain prompt's version (`abstain-v2`) and no
        cited sources; that version is the record of it.
        """
        return self.prompt_version.startswith(ABSTAIN_VERSION_PREFIX)

    def searched_as(self) -> str:
        """What was searched, when it is not what the user typed: a follow-up made to stand alone.

        A reviewer can't judge the answer to "and for GCS?" without knowing it was about
        connecting a bucket as source storage; "" for a question searched as asked.
        """
        searched = self.standalone_question.strip()
        return searched if searched and searched != self.question.strip() else ""

    def rejected_only_for(self, problems: Collection[str]) -> bool:
        """Whether its reviewer ticked what was wrong, every problem among `problems`: the
        failure is put on those (the gaps panel and the prompt reviser leave such answers out).

        Problems are kept with a reviewer's Bad verdict only, so any ticked means a rejection.
        """
        return bool(self.reviewer_problems) and set(self.reviewer_problems) <= set(problems)


@dataclass(frozen=True)
class RatingEvent:
    """One row of rating history, as returned by `rate()` and friends."""

    id: int
    exchange_id: str
    time: str
    kind: Literal["user", "reviewer"]
    source: str
    rating: Rating | None
    comment: str
    reviewer: str = ""
    annotation_id: int | None = None
    task_id: int | None = None
    deleted: bool = False
    problems: tuple[str, ...] = ()  # a reviewer's, with a Bad verdict (`PROBLEMS` keys)


@dataclass(frozen=True)
class Delivery:
    """What the sync worker must bring Label Studio up to date with for one exchange."""

    exchange: Exchange
    wanted: int  # rating row to deliver
    rating: Rating | None  # None: a task for an answer only a reviewer rated (no thumb to show)
    comment: str
    task_id: int | None
    prediction_id: int | None
    verify: bool
    attempts: int
    problems: tuple[str, ...] = ()  # what the user ticked with a thumbs down


@dataclass(frozen=True)
class ReviewDelivery:
    """An inline verdict (the Review tab's) that Label Studio must get as an annotation."""

    exchange: Exchange  # its task_id: the exchange's task, if Label Studio has one yet
    wanted: int  # the inline verdict row to deliver; also the annotation's import_id
    rating: Rating
    comment: str
    annotation_id: int | None  # the annotation that carries the verdict, once created
    verify: bool  # an annotation may exist already (an earlier try): look for it first
    attempts: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class CarryDelivery:
    """A verdict whose annotation was in a project the app no longer has (deleted, or another one
    set): made again as an annotation in the new project (see `FeedbackLog.reset_delivery_target`)."""

    exchange: Exchange  # its task_id: the exchange's task in the new project, if it has one yet
    annotation_id: int  # the annotation left behind: its stream of rows in the log
    row: int  # the stream's latest verdict row: the new annotation's import_id
    rating: Rating
    comment: str
    problems: tuple[str, ...]
    attempts: int


@dataclass(frozen=True)
class AccuracyRow:
    """Accuracy of one group: `accuracy` uses reviewer verdicts first, user thumbs elsewhere."""

    key: str
    rated: int
    good: int
    reviewed: int
    reviewer_good: int
    user_rated: int
    user_good: int

    @property
    def accuracy(self) -> float | None:
        return self.good / self.rated if self.rated else None

    @property
    def reviewer_accuracy(self) -> float | None:
        return self.reviewer_good / self.reviewed if self.reviewed else None

    @property
    def user_accuracy(self) -> float | None:
        return self.user_good / self.user_rated if self.user_rated else None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            accuracy=self.accuracy, reviewer_accuracy=self.reviewer_accuracy, user_accuracy=self.user_accuracy
        )
        return out


@dataclass(frozen=True)
class PreRatingAgreement:
    """How pre-ratings compare with reviewers' verdicts, over answers that have both."""

    compared: int = 0
    agreed: int = 0
    flagged: int = 0  # pre-rated bad
    flagged_right: int = 0  # ... and a reviewer found them bad too
    missed: int = 0  # pre-rated good, found bad by a reviewer
    pre_rated: int = 0  # answers with a pre-rating, reviewed or not
    waiting: int = 0  # pre-rated bad, no reviewer verdict yet: the ones to look at first

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def summary(self) -> str:
        """One sentence for the report and the Review tab."""
        if not self.pre_rated:
            return "No answer is pre-rated yet (PRE_RATE)."
        waiting = f"; {self.waiting} pre-rated Bad wait for a reviewer" if self.waiting else ""
        if not self.compared:
            return f"{self.pre_rated} answers pre-rated, none reviewed yet{waiting}."
        return (
            f"Pre-ratings agree with reviewers on {self.agreed} of {self.compared} answers "
            f"({self.agreed / self.compared:.0%}); of {self.flagged} pre-rated Bad, reviewers rejected "
            f"{self.flagged_right}; {self.missed} pre-rated Good were rejected{waiting}."
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(agreement=self.agreement, summary=self.summary)
        return out


@dataclass(frozen=True)
class ProblemCounts:
    """What reviewers found wrong with the answers they rejected (current verdicts), or
    (`by="user"`) what users said with the thumbs down no reviewer has judged yet."""

    rejected: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # problem key → rejected answers naming it
    unexplained: int = 0  # rejected answers with no problem ticked
    by: Literal["reviewer", "user"] = "reviewer"

    @property
    def summary(self) -> str:
        """One sentence for the report and the Review tab, the most named first."""
        if self.by == "user":
            labels, none = USER_PROBLEMS, "No thumbs down waits for a reviewer."
            head = f"What users said was wrong, on {self.rejected} thumbs down no reviewer has judged yet"
            nothing = f"{head}: nothing ticked."
        else:
            labels, none = PROBLEMS, "No answer rejected by a reviewer yet."
            answers = "the rejected answer" if self.rejected == 1 else f"the {self.rejected} rejected answers"
            head = f"What was wrong with {answers}"
            nothing = f"No reviewer said what was wrong with {answers}."
        named = sorted((k for k, n in self.counts.items() if n), key=lambda k: -self.counts[k])
        if not self.rejected:
            return none
        if not named:
            return nothing
        parts = "; ".join(f"{problem_words([k], labels)} {self.counts[k]}" for k in named)
        untold = f"; {self.unexplained} without a reason" if self.unexplained else ""
        return f"{head}: {parts}{untold}."

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = self.summary
        return out


@dataclass(frozen=True)
class SyncStatus:
    """What reviewers see about delivery to Label Studio."""

    configured: bool
    missing: tuple[str, ...] = ()  # settings that keep it from being configured
    pending: int = 0
    delivered: int = 0
    last_error: str = ""
    last_error_at: str | None = None
    last_success_at: str | None = None
    last_pull_at: str | None = None
    project_url: str = ""
    webhook: str = ""  # how verdicts come back: registered webhook URL, or why only pull
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One line for the UI."""
        if not self.configured:
            return f"Feedback is kept locally only (Label Studio is not configured: set {' and '.join(self.missing)})."
        if self.last_error:
            return f"Label Studio: {self.pending} change(s) waiting — {self.last_error}"
        if self.pending:  # a thumb, a comment, a Review-tab verdict, or a task to rewrite with its pre-rating
            return f"Label Studio: {self.pending} change(s) waiting to be sent (ratings, verdicts, hints)."
        if not self.last_success_at:
            return "Label Studio: not contacted yet."
        when = self.last_success_at[:19].replace("T", " ")
        return f"Label Studio: all {self.delivered} rated answer(s) delivered (last sync {when} UTC)."

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["message"] = self.message
        return out
