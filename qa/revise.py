"""Revising the answer prompt from reviewers' feedback: draft, try, adopt (or go back).

Reviewers reject answers and say why ("it gave the Docker steps but I asked about
pip", "no citation for the port"). Those comments are the best description there is
of what the answer prompt gets wrong, so a model reads them, with the answers
reviewers approved, and drafts new instructions. A draft is only a candidate:

1. `PromptReviser.draft` writes it (version `answer-v2-r1`, then `-r2`...), and
   `PromptRevisions.save` keeps it under DATA_DIR/prompts/revisions with the changes
   the model listed and the answers it learned from;
2. `try_revision` answers the reviewed questions again with it, and has the judge
   (`qa.judge`) pre-rate the new answers, so a maintainer sees both answers side by
   side, and a figure, before anything changes for users;
3. `PromptRevisions.adopt` makes it DATA_DIR/prompts/answer.md, which the answer
   chain reads instead of the bundled prompt (`qa.prompts.load_prompt`); the answers
   then carry the new version, so the feedback report's accuracy per prompt version
   says whether users and reviewers agree. `restore_bundled` undoes it.

Only the instructions (the system message) are rewritten; the message that carries
the excerpts and the question stays as it is. The compact prompt of the tiny local
model has no instructions to rewrite (it follows none: see `qa/prompts/answer-compact.md`).
This module knows nothing of the feedback log: the caller hands it `ReviewedAnswer`s.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser

from qa.chain import AnswerChain
from qa.llm import ServedModel, describe_error, make_side_model, model_id
from qa.prompts import (
    REVISE,
    ROLE_LINE,
    PromptFileError,
    PromptSpec,
    bundled_prompt,
    check_variables,
    load_prompt,
    parse_prompt,
)
from settings import Settings

if TYPE_CHECKING:
    from qa.judge import AnswerJudge

log = logging.getLogger(__name__)

Rating = Literal["good", "bad"]
MAX_REJECTED = 12  # answers of each kind the model reads: enough to see patterns, a bounded prompt
MAX_APPROVED = 6
MAX_ANSWER_CHARS = 1200
MAX_COMMENT_CHARS = 600
REVISE_MAX_TOKENS = 2000  # the whole new instructions (answer-v2's are ~900 characters) and the changes
REVISE_TIMEOUT = 180.0  # seconds: a long reply, and nobody is waiting on a chat answer
REVISIONS = "revisions"  # DATA_DIR/prompts/revisions: every draft, adopted or not

_BLOCK = re.compile(r"<instructions>\s*(.*?)\s*</instructions>", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<instructions>", re.IGNORECASE)
_FENCE = re.compile(r"^```[\w-]*\n|\n```$")
_REVISION_SUFFIX = re.compile(r"-r(\d+)$")


class RevisionError(ValueError):
    """No usable revision: the message says why and what to do."""


@dataclass(frozen=True)
class ReviewedAnswer:
    """An answer with a verdict on it, as the reviser reads it."""

    id: str
    question: str
    answer: str
    verdict: Rating
    comment: str = ""
    by: Literal["reviewer", "user"] = "reviewer"
    problems: tuple[str, ...] = ()  # what the reviewer ticked as wrong, in words ("Incomplete")


@dataclass(frozen=True)
class Revision:
    """A drafted answer prompt, not yet adopted."""

    prompt: PromptSpec  # version e.g. answer-v2-r1; front matter: what it revises and how it was made
    changes: list[str]  # as the model listed them
    model: str
    rejected: list[str]  # ids of the answers it learned from
    approved: list[str]


def instructions(prompt: PromptSpec) -> str:
    """The prompt's system message as the model reads it (`{{` written as `{`)."""
    for role, text in prompt.messages:
        if role == "system":
            return text.replace("{{", "{").replace("}}", "}")
    raise RevisionError(
        f"The answer prompt {prompt.version} has no instructions to revise: it is the plain layout for the"
        " bundled local model, which follows no rules. Answer with a capable model (OPENAI_API_KEY, or"
        " OPENAI_BASE_URL and OPENAI_MODEL), or set PROMPT_STYLE=chat."
    )


def prompt_name(prompt: PromptSpec) -> str:
    """Which prompt `prompt` is (`answer`), also for a draft or an adopted revision of it."""
    return prompt.get("revises") or prompt.path.stem


def next_version(current: str, taken: Iterable[str]) -> str:
    """`answer-v2` → `answer-v2-r1`; `answer-v2-r1` → `answer-v2-r2`, past any draft already made."""
    root = _REVISION_SUFFIX.sub("", current)
    numbers = [0]
    for version in [current, *taken]:
        match = _REVISION_SUFFIX.search(version)
        if match and _REVISION_SUFFIX.sub("", version) == root:
            numbers.append(int(match.group(1)))
    return f"{root}-r{max(numbers) + 1}"


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def format_answers(answers: Sequence[ReviewedAnswer]) -> str:
    if not answers:
        return "(none)"
    blocks = []
    for n, item in enumerate(answers, start=1):
        who = "Reviewer" if item.by == "reviewer" else "User"
        comment = _cut(item.comment, MAX_COMMENT_CHARS) or "(no comment)"
        wrong = f"\nWhat the {who.lower()} found wrong: {'; '.join(item.problems)}" if item.problems else ""
        blocks.append(
            f"[{n}] Question: {_cut(item.question, MAX_ANSWER_CHARS)}\n"
            f"Answer: {_cut(item.answer, MAX_ANSWER_CHARS)}\n"
            f"{who}'s comment: {comment}{wrong}"
        )
    return "\n\n".join(blocks)


def parse_revision(reply: str) -> tuple[str, list[str]]:
    """The new instructions and the listed changes in the reviser's reply.

    RevisionError when the reply has no complete `<instructions>` block: a reply cut at
    its token cap would otherwise become a prompt that stops mid-rule.
    """
    found = _BLOCK.search(reply)
    if not reply.strip():
        raise RevisionError(
            "The model sent back an empty reply: nothing was saved. Try again; if it keeps happening, set"
            " REVISE_MODEL to a chat model the server serves (a reasoning model may spend its whole reply"
            " thinking)."
        )
    if not found:
        start = " ".join(reply.split())[:200]
        if _OPEN.search(reply):
            raise RevisionError(
                "The model's reply stopped before </instructions> (cut at its token cap, or it lost the"
                f" format): nothing was saved. Try again, or set REVISE_MODEL to a stronger model. It began: {start!r}"
            )
        raise RevisionError(
            "The model's reply held no new instructions between <instructions> and </instructions>: nothing"
            f" was saved. Try again, or set REVISE_MODEL to a stronger model. It began: {start!r}"
        )
    text = _FENCE.sub("", found.group(1).strip()).strip()
    rest = reply[found.end() :]
    rest = rest.split(":", 1)[1] if re.match(r"\s*changes\s*:", rest, re.IGNORECASE) else rest
    changes = [
        re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip()
        for line in rest.splitlines()
        if re.match(r"^\s*(?:[-*•]|\d+[.)])\s+\S", line)
    ]
    return text, changes


class PromptReviser:
    """Drafts a revision of an answer prompt with `llm` (one whole reply, a few thousand tokens)."""

    def __init__(self, llm: BaseChatModel) -> None:
        self.llm = llm
        self.prompt = load_prompt(REVISE)
        self.model = model_id(llm)
        self._chain = self.prompt.template() | llm | StrOutputParser()

    def draft(
        self, current: PromptSpec, reviewed: Sequence[ReviewedAnswer], *, taken: Iterable[str] = ()
    ) -> Revision:
        """A candidate to replace `current`, learned from `reviewed` (at least one rejected answer).

        `taken`: versions already drafted, so the new one gets the next number. Model errors
        propagate; a reply without usable instructions raises RevisionError.
        """
        old = instructions(current)
        rejected = [r for r in reviewed if r.verdict == "bad"][:MAX_REJECTED]
        approved = [r for r in reviewed if r.verdict == "good"][:MAX_APPROVED]
        if not rejected:
            raise RevisionError(
                f"No rejected answers of {current.version} to learn from: a revision starts from what reviewers"
                " (or users, with a thumbs down) found wrong."
            )
        served = ServedModel()
        reply = self._chain.invoke(
            {"instructions": old, "rejected": format_answers(rejected), "approved": format_answers(approved)},
            {"callbacks": [served]},
        )
        text, changes = parse_revision(reply)
        text = ROLE_LINE.sub(lambda m: f"({m.group(1)})", text)  # a "[user]" line would start a message
        if " ".join(text.split()) == " ".join(old.split()):
            raise RevisionError(
                "The model kept the instructions word for word: there is no change to try. Reviewers' comments"
                " on the rejected answers tell it what to change; add some, or try a stronger REVISE_MODEL."
            )
        if len(text) > 4 * len(old) + 2000:
            raise RevisionError(
                f"The model's instructions run to {len(text)} characters, against {len(old)} now: that is a"
                " rewrite, not a revision, and would slow every answer. Nothing was saved; try again."
            )
        model = served.name or self.model
        version = next_version(current.version, taken)
        escaped = text.replace("{", "{{").replace("}", "}}")
        messages = tuple((role, escaped if role == "system" else body) for role, body in current.messages)
        described = "; ".join(changes) or "the model listed none"
        meta = dict(current.meta)
        meta.update(
            revises=prompt_name(current),
            based_on=current.version,
            drafted_by=model,
            drafted_at=datetime.now(UTC).isoformat(timespec="seconds"),
            learned_from=f"{len(rejected)} rejected and {len(approved)} approved answers",
        )
        prompt = replace(
            current,
            version=version,
            messages=messages,
            description=f"Revision of {current.version} from reviewers' feedback. Changes: {described}",
            meta=tuple(meta.items()),
        )
        check_variables(prompt, current.variables())
        return Revision(prompt, changes, model, [r.id for r in rejected], [r.id for r in approved])


def make_reviser(settings: Settings, llm: BaseChatModel | None = None) -> PromptReviser:
    """The reviser for the configured backend: REVISE_MODEL (or OPENAI_MODEL), one whole reply."""
    if llm is None:
        timeout = max(settings.llm_timeout, REVISE_TIMEOUT)
        llm = make_side_model(settings, settings.revise_model, REVISE_MAX_TOKENS, timeout=timeout)
    return PromptReviser(llm)


# --- trying a draft --------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One reviewed question answered again with the draft."""

    id: str
    question: str
    verdict: Rating  # the verdict on the answer given before
    comment: str
    before: str
    after: str
    abstained: bool = False  # the docs were found silent: no model was asked, nothing to compare
    pre_rating: Rating | None = None  # the judge's on the new answer (None: no judge, or no verdict)
    reason: str = ""
    error: str = ""  # answering or judging failed: what went wrong


@dataclass(frozen=True)
class Trial:
    version: str
    judge: str  # the judge's model ("" when none pre-rated)
    rows: list[TrialRow] = field(default_factory=list)
    tried_at: str = ""

    def count(self, verdict: Rating, pre_rating: Rating | None = None) -> int:
        rows = [r for r in self.rows if r.verdict == verdict]
        return len(rows) if pre_rating is None else sum(r.pre_rating == pre_rating for r in rows)

    @property
    def summary(self) -> str:
        """One sentence for the maintainer deciding whether to adopt."""
        bad, good = self.count("bad"), self.count("good")
        text = f"{self.version} answered the {bad} rejected and {good} approved questions again."
        if not self.judge:
            return text + " No judge pre-rated the new answers (PRE_RATE is off): compare them side by side."
        unrated = sum(r.pre_rating is None for r in self.rows)
        text += (
            f" The judge ({self.judge}) rates Good {self.count('bad', 'good')} of the {bad} once rejected"
            f" and {self.count('good', 'good')} of the {good} once approved"
        )
        return text + (f"; {unrated} got no pre-rating." if unrated else ".")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        return cls(
            version=data["version"],
            judge=data.get("judge", ""),
            rows=[TrialRow(**row) for row in data.get("rows", [])],
            tried_at=data.get("tried_at", ""),
        )


def try_revision(
    chain: AnswerChain,
    prompt: PromptSpec,
    reviewed: Sequence[ReviewedAnswer],
    judge: AnswerJudge | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Trial:
    """Answer each reviewed question again with `prompt`, and have `judge` pre-rate the answers.

    The draft is tried on the same retriever and model as `chain`, but without reviewers'
    earlier verdicts in the prompt: the question is what the instructions alone do. A
    failing answer or judge is noted on its row, and the trial goes on.
    """
    trial_chain = AnswerChain(
        chain.retriever, chain.llm, chain.settings, compact=chain.compact, prompt=prompt
    )
    rows = []
    for n, item in enumerate(reviewed):
        if progress is not None:
            progress(n, len(reviewed))
        base = TrialRow(item.id, item.question, item.verdict, item.comment, item.answer, "")
        try:
            answer = trial_chain.answer(item.question)
        except Exception as exc:  # AnswerError: already a sentence
            rows.append(replace(base, error=str(exc)))
            continue
        row = replace(base, after=answer.text, abstained=answer.abstained)
        if judge is not None and not answer.abstained and answer.text.strip():
            try:
                rated = judge.rate(answer.standalone_question, answer.text, answer.context)
            except Exception as exc:
                row = replace(row, error=f"pre-rating failed: {describe_error(exc, chain.settings)}")
            else:
                if rated is not None:
                    row = replace(row, pre_rating=rated.verdict, reason=rated.reason)
        rows.append(row)
    return Trial(
        version=prompt.version,
        judge=judge.model if judge is not None else "",
        rows=rows,
        tried_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


# --- the files -------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A saved revision: its prompt file and what is known about it."""

    prompt: PromptSpec
    changes: list[str]
    rejected: list[str]
    approved: list[str]
    trial: Trial | None = None
    adopted_at: str = ""

    @property
    def version(self) -> str:
        return self.prompt.version


def _write_atomic(path: Path, text: str) -> None:
    """Write whole or not at all: a half-written prompt would break every answer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PromptRevisions:
    """The prompt files under DATA_DIR/prompts: the active overrides and every draft made.

    `<dir>/answer.md` is the answer prompt in use when it exists (an adopted draft);
    `<dir>/revisions/<version>.md` holds each draft and `<version>.json` its changes,
    the answers it learned from, its trial and when it was adopted. Nothing is deleted:
    going back to the bundled prompt removes only the active copy.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.revisions = self.directory / REVISIONS

    def _info_path(self, version: str) -> Path:
        return self.revisions / f"{version}.json"

    def _info(self, version: str) -> dict[str, Any]:
        path = self._info_path(version)
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError):
            log.warning("cannot read %s; the draft is listed without its notes", path, exc_info=True)
            return {}

    def _save_info(self, version: str, **values: Any) -> None:
        info = self._info(version)
        info.update(values)
        _write_atomic(self._info_path(version), json.dumps(info, indent=2, ensure_ascii=False) + "\n")

    def save(self, revision: Revision) -> Draft:
        version = revision.prompt.version
        path = self.revisions / f"{version}.md"
        if path.exists():
            raise RevisionError(f"A draft {version} exists already ({path}); nothing was overwritten.")
        _write_atomic(path, revision.prompt.render())
        self._save_info(
            version, changes=revision.changes, rejected=revision.rejected, approved=revision.approved
        )
        return self.get(version)

    def versions(self) -> list[str]:
        """Every draft's version, newest first."""
        paths = sorted(self.revisions.glob("*.md"), key=lambda p: p.stat().st_mtime, reverse=True)
        return [p.stem for p in paths]

    def get(self, version: str) -> Draft:
        path = self.revisions / f"{version}.md"
        if not version or "/" in version or not path.is_file():
            raise RevisionError(f"No draft {version!r} in {self.revisions}.")
        info = self._info(version)
        trial = info.get("trial")
        return Draft(
            prompt=parse_prompt(path),
            changes=list(info.get("changes", [])),
            rejected=list(info.get("rejected", [])),
            approved=list(info.get("approved", [])),
            trial=Trial.from_dict(trial) if trial else None,
            adopted_at=str(info.get("adopted_at", "")),
        )

    def save_trial(self, trial: Trial) -> None:
        self._save_info(trial.version, trial=trial.as_dict())

    def active(self, name: str) -> PromptSpec:
        """The prompt `name` answers use now (an adopted draft, or the bundled one)."""
        return load_prompt(name, self.directory)

    def adopt(self, version: str) -> PromptSpec:
        """Make the draft the prompt in use (for the chain's next start, or `use_answer_prompt`)."""
        draft = self.get(version)
        name = draft.prompt.get("revises")
        if not name or "/" in name:
            raise RevisionError(
                f"The draft {version} does not say which prompt it revises ('revises:' line)."
            )
        check_variables(draft.prompt, bundled_prompt(name).variables())
        _write_atomic(self.directory / f"{name}.md", draft.prompt.render())
        self._save_info(version, adopted_at=datetime.now(UTC).isoformat(timespec="seconds"))
        return self.active(name)

    def restore_bundled(self, name: str) -> PromptSpec:
        """Answer with the bundled prompt again. A hand-written override is kept among the drafts."""
        path = self.directory / f"{name}.md"
        if path.is_file():
            try:
                spec = parse_prompt(path)
                kept = self.revisions / f"{spec.version}.md"
            except PromptFileError:
                kept = self.revisions / f"{name}-unreadable-{datetime.now(UTC):%Y%m%dT%H%M%S}.md"
            if kept.exists():
                path.unlink()
            else:
                kept.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, kept)
        return bundled_prompt(name)
