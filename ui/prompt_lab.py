"""The Review tab's "Improve the answer prompt" panel: reviewers' feedback in, a better prompt out.

A maintainer drafts a revision of the answer prompt's instructions from the answers
reviewers (and users, with a thumbs down) rejected and approved, reads the changes
and the new rules against the old, tries the draft on those same questions (the judge
pre-rates the new answers), and adopts it, or goes back to the bundled prompt. The
work is `qa.revise`'s; this module feeds it the feedback log's verdicts and shows the
results. Accuracy per prompt version (above the panel) then says whether the adopted
draft did better.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable

import gradio as gr
import pandas as pd

from feedback.log import FeedbackLog
from feedback.records import PROBLEMS, USER_PROBLEMS, Exchange
from qa.chain import compact_prompt
from qa.llm import describe_error
from qa.prompts import PROMPT_DIR, PromptFileError, PromptSpec, answer_prompt_name, bundled_prompt
from qa.revise import (
    Draft,
    PromptRevisions,
    ReviewedAnswer,
    RevisionError,
    Trial,
    instructions,
    prompt_name,
    try_revision,
)
from ui.context import AppContext
from ui.render import literal_markdown

log = logging.getLogger(__name__)

TRIAL_COLUMNS = [
    "question",
    "verdict before",
    "comment",
    "answer before",
    "answer with the draft",
    "pre-rating",
]
NO_DRAFT = "No draft yet: draft one from the reviewed answers."
# A rejection whose reviewer ticked only these put the fault on the passages found or on the
# abstain verdict, neither of which the answer prompt decides: the reviser is not shown it, or it
# would write rules against a mistake the model did not make (`feedback.records.PROBLEMS` keys).
NOT_PROMPT_PROBLEMS = frozenset({"wrong_sources", "false_abstain"})


def rated_answers(feedback_log: FeedbackLog, version: str | None = None) -> list[Exchange]:
    """The answers written with prompt `version` (None: any) that have a verdict."""
    return [
        e
        for e in feedback_log.recent(0, rated_only=True)
        if (version is None or e.prompt_version == version) and e.verdict is not None
    ]


def reviewed_answers(feedback_log: FeedbackLog, version: str | None = None) -> list[ReviewedAnswer]:
    """The answers written with prompt `version` (None: any) that have a verdict, the reviser's way round."""
    return as_reviewed(rated_answers(feedback_log, version))


def as_reviewed(rated: list[Exchange]) -> list[ReviewedAnswer]:
    """Rated answers as the reviser reads them.

    A reviewer's verdict wins over the user's thumb (as in accuracy), and brings what the
    reviewer ticked as wrong, in words; a rejection for the passages alone is left out
    (`NOT_PROMPT_PROBLEMS`). Rejected answers with a comment or a ticked problem come first,
    since they say what to change; newest first within each.
    """
    items = []
    for e in rated:
        if e.rejected_only_for(NOT_PROMPT_PROBLEMS):
            continue
        by = "reviewer" if e.verdict_source == "reviewer" else "user"
        comment = e.reviewer_comment if by == "reviewer" else e.user_comment
        question = e.standalone_question or e.question
        problems = (
            tuple(PROBLEMS[k] for k in e.reviewer_problems)
            if by == "reviewer"
            else tuple(USER_PROBLEMS[k] for k in e.user_problems if k in USER_PROBLEMS)
        )
        items.append(ReviewedAnswer(e.id, question, e.answer, e.verdict, comment, by, problems))
    items.sort(key=lambda r: (r.verdict != "bad", not (r.comment.strip() or r.problems)))  # newest first kept
    return items


class PromptLab:
    """Drafting, trying and adopting answer-prompt revisions for the running app."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.files = PromptRevisions(ctx.settings.prompts_dir)

    def name(self) -> str:
        """Which answer prompt the app uses (`answer`, or `answer-compact` for the tiny local model)."""
        if self.ctx.chain is not None:
            return prompt_name(self.ctx.chain.answer_prompt)
        return answer_prompt_name(compact_prompt(self.ctx.settings))

    def current(self) -> PromptSpec:
        """The answer prompt answers are written with now (PromptFileError: a broken file replaces it)."""
        if self.ctx.chain is not None:
            return self.ctx.chain.answer_prompt
        return self.files.active(self.name())

    def reviewed(self) -> list[ReviewedAnswer]:
        return reviewed_answers(self.ctx.log, self.current().version)

    def draft(self) -> Draft:
        """Draft and save a revision of the prompt in use; RevisionError or the model's error if not."""
        if self.ctx.reviser is None:
            raise RevisionError("Drafting is off in this app (no reviser model).")
        revision = self.ctx.reviser.draft(self.current(), self.reviewed(), taken=self.files.versions())
        return self.files.save(revision)

    def try_draft(self, version: str, progress: Callable[[int, int], None] | None = None) -> Trial:
        """Answer the reviewed questions of the prompt in use again with draft `version`."""
        chain = self.ctx.chain
        if chain is None:
            raise RevisionError(self.ctx.problem or "Nothing is ingested yet: run `python ingest.py` first.")
        draft = self.files.get(version)
        learned = {*draft.rejected, *draft.approved}  # its own questions, whichever prompt is in use now
        reviewed = [r for r in reviewed_answers(self.ctx.log) if r.id in learned] or self.reviewed()
        if not reviewed:
            raise RevisionError(f"No reviewed answers to try {version} on.")
        trial = try_revision(chain, draft.prompt, reviewed, self.ctx.judge, progress)
        self.files.save_trial(trial)
        return trial

    def adopt(self, version: str) -> PromptSpec:
        spec = self.files.adopt(version)
        self._use(spec)
        return spec

    def restore_bundled(self) -> PromptSpec:
        """Back to the bundled prompt, also when the file replacing it is broken (the chain then opens)."""
        spec = self.files.restore_bundled(self.name())
        self._use(spec)
        self.ctx.refresh()
        return spec

    def go_back(self) -> str:
        """`restore_bundled`, said as the panel and `python app.py prompt restore` both say it."""
        was_bundled = self.on_bundled()
        spec = self.restore_bundled()
        if was_bundled:
            return f"Answers already use the bundled {spec.version}: nothing to go back from."
        return f"Answers use the bundled {spec.version} again; the drafts are kept."

    def on_bundled(self) -> bool:
        """Whether answers use the bundled prompt (a broken file replacing it is not: going back fixes it)."""
        try:
            return self.current().path.parent == PROMPT_DIR
        except PromptFileError:
            return False

    def can_draft(self) -> bool:
        """Whether "Draft a revision" can work: a reviser, a prompt with instructions, a rejected answer."""
        if self.ctx.reviser is None:
            return False
        try:
            instructions(self.current())
        except (PromptFileError, RevisionError):
            return False
        return any(r.verdict == "bad" for r in self.reviewed())

    def _use(self, spec: PromptSpec) -> None:
        """The running chain answers with `spec` from now on, when it is the prompt it uses."""
        chain = self.ctx.chain
        if chain is not None and prompt_name(chain.answer_prompt) == prompt_name(spec):
            chain.use_answer_prompt(spec)

    # --- what the panel shows -------------------------------------------------------

    def status_markdown(self, *, plain: bool = False) -> str:
        """Which prompt answers use and how it does; `plain`: as text for a terminal (the command line)."""
        esc, strong = (str, "") if plain else (literal_markdown, "**")
        try:
            current = self.current()
        except PromptFileError as exc:
            return f"{strong}The answer prompt cannot be read:{strong} {esc(str(exc))}"
        if current.path.parent == PROMPT_DIR:
            where = "bundled"
        elif current.get("based_on"):
            where = f"a revision of {current.get('based_on')}, adopted"
        else:
            where = f"from {current.path}"
        rated = rated_answers(self.ctx.log, current.version)  # one read of the log for both figures
        reviewed = as_reviewed(rated)
        bad = [r for r in reviewed if r.verdict == "bad"]
        commented = sum(bool(r.comment.strip()) for r in bad)
        by_reviewers = sum(r.by == "reviewer" for r in reviewed)
        elsewhere = sum(e.rejected_only_for(NOT_PROMPT_PROBLEMS) for e in rated)
        left_out = (
            f"; {elsewhere} more left out, rejected for the passages found or for saying the docs are silent"
            if elsewhere
            else ""
        )
        rows = {r.key: r for r in self.ctx.log.accuracy(by="prompt_version")}
        row = rows.get(current.version)
        accuracy = (
            f"{row.accuracy:.0%} of {row.rated} rated"
            if row and row.accuracy is not None
            else "none rated yet"
        )
        text = (
            f"Answers use {strong}{esc(current.version)}{strong} ({esc(where)}; accuracy {accuracy})."
            f" Its rated answers: {len(bad)} rejected ({commented} with a comment),"
            f" {len(reviewed) - len(bad)} approved; {by_reviewers} of them judged by reviewers, the rest by"
            f" users' thumbs{left_out}."
        )
        try:
            instructions(current)
        except RevisionError as exc:
            return text + f"\n\n{esc(str(exc))}"
        if not bad:
            text += " A draft needs at least one rejected answer of this version."
        return text

    def draft_markdown(self, draft: Draft | None, *, plain: bool = False) -> str:
        """A draft: what it revises, who made it from what, its changes and its trial (`plain`: as text)."""
        if draft is None:
            return NO_DRAFT
        esc, strong = (str, "") if plain else (literal_markdown, "**")
        spec = draft.prompt
        made = f"drafted by {spec.get('drafted_by') or 'a model'} from {spec.get('learned_from') or 'reviewed answers'}"
        adopted = f"; adopted {draft.adopted_at[:16].replace('T', ' ')} UTC" if draft.adopted_at else ""
        changes = "\n".join(f"- {esc(c)}" for c in draft.changes) or "- (the model listed none)"
        text = (
            f"{strong}{esc(spec.version)}{strong}, a revision of {esc(spec.get('based_on'))}"
            f" ({esc(made)}{adopted}).\n\n{strong}Changes, as the model lists them:{strong}\n{changes}"
        )
        if draft.trial is not None:
            text += f"\n\n{strong}Tried:{strong} {esc(draft.trial.summary)}"
        return text

    def diff(self, draft: Draft | None) -> str:
        """The draft's instructions against those of the prompt it revises (a unified diff)."""
        if draft is None:
            return ""
        try:
            base = self.current()
        except PromptFileError:
            base = bundled_prompt(self.name())
        based_on = draft.prompt.get("based_on")
        if base.version != based_on and based_on in self.files.versions():  # it revises an earlier draft
            base = self.files.get(based_on).prompt
        try:
            old = instructions(base).splitlines()
        except RevisionError:
            old = []
        new = instructions(draft.prompt).splitlines()
        lines = difflib.unified_diff(old, new, base.version, draft.prompt.version, n=2, lineterm="")
        return "\n".join(lines) or "(the same instructions)"


def trial_frame(trial: Trial | None) -> pd.DataFrame:
    rows = []
    for r in trial.rows if trial is not None else []:
        if r.error:
            rated = r.error
        elif r.abstained:
            rated = "docs found silent"
        else:
            rated = f"{r.pre_rating}: {r.reason}" if r.pre_rating else ""
        rows.append(
            {
                "question": r.question,
                "verdict before": r.verdict,
                "comment": r.comment,
                "answer before": r.before[:600],
                "answer with the draft": r.after[:600],
                "pre-rating": rated,
            }
        )
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def build_prompt_panel(ctx: AppContext, unlocked: gr.State, visibility: str) -> None:
    """The panel, inside the review page; every action needs the page open (its password, if any)."""
    lab = PromptLab(ctx)
    with gr.Accordion("Improve the answer prompt from reviewers' feedback", open=False) as panel:
        status = gr.Markdown(elem_id="prompt-status")
        with gr.Row():
            draft_button = gr.Button("Draft a revision", variant="primary", scale=1, interactive=False)
            drafts = gr.Dropdown([], label="Drafts", elem_id="prompt-drafts", scale=2)
        about = gr.Markdown(NO_DRAFT, elem_id="prompt-draft")
        diff = gr.Code(
            label="Its instructions against those it revises", interactive=False, elem_id="prompt-diff"
        )
        with gr.Row():
            # Live once there is a draft to try or adopt (the Drafts list has one chosen).
            try_button = gr.Button("Try it on the reviewed questions", interactive=False)
            adopt_button = gr.Button("Adopt it: answer with it from now on", interactive=False)
            restore_button = gr.Button("Go back to the bundled prompt", interactive=False)
        trial = gr.Dataframe(
            trial_frame(None),
            interactive=False,
            wrap=True,
            label="The trial: each reviewed question answered again with the draft",
            column_widths=["16%", "7%", "15%", "23%", "23%", "16%"],  # both answers side by side on screen
            elem_id="prompt-trial",
        )
    outputs = [status, drafts, about, diff, trial]

    def show(version: str | None):  # noqa: ANN202 - the panel's five values
        versions = lab.files.versions()
        version = version if version in versions else (versions[0] if versions else None)
        draft = None
        if version:
            try:
                draft = lab.files.get(version)
            except (RevisionError, PromptFileError) as exc:
                gr.Warning(str(exc))
        return (
            lab.status_markdown(),
            gr.update(choices=versions, value=version),
            lab.draft_markdown(draft),
            lab.diff(draft),
            trial_frame(draft.trial if draft else None),
        )

    def guarded(action: Callable[..., str | None]):  # noqa: ANN202
        """Run an action; its problem (a RevisionError, the model's error) is a warning, not a crash."""

        def run(version: str | None, open_: bool, progress: gr.Progress = gr.Progress()):  # noqa: B008
            if not open_:
                raise gr.Error("Enter the reviewer password first.")
            try:
                version = action(version, progress) or version
            except (RevisionError, PromptFileError) as exc:
                gr.Warning(str(exc))
            except Exception as exc:
                log.exception("prompt revision failed")
                gr.Warning(describe_error(exc, ctx.settings))
            return show(version)

        return run

    def draft_action(_version: str | None, progress: gr.Progress) -> str:
        progress(0, desc="The model is drafting new instructions…")
        draft = lab.draft()
        gr.Info(f"Drafted {draft.version}. Read it, try it, then adopt it if it does better.")
        return draft.version

    def try_action(version: str | None, progress: gr.Progress) -> None:
        if not version:
            raise RevisionError("Pick a draft first.")
        done = lab.try_draft(version, lambda n, total: progress((n, total), desc="Answering again"))
        gr.Info(done.summary)

    def adopt_action(version: str | None, _progress: gr.Progress) -> None:
        if not version:
            raise RevisionError("Pick a draft first.")
        spec = lab.adopt(version)
        gr.Info(f"Answers now use {spec.version}. Accuracy per prompt version will tell if it does better.")

    def restore_action(_version: str | None, _progress: gr.Progress) -> None:
        gr.Info(lab.go_back())

    def load(version: str | None, open_: bool):  # noqa: ANN202
        return show(version) if open_ else tuple(gr.update() for _ in outputs)

    def draft_chosen(version: str | None):  # noqa: ANN202 - the two buttons' updates
        return (gr.update(interactive=bool(version)),) * 2

    panel.expand(load, [drafts, unlocked], outputs, api_visibility="private")
    drafts.change(draft_chosen, drafts, [try_button, adopt_button], api_visibility="private")
    # Live only when they can do something; the status says why when they can't (every action
    # that changes what they depend on shows a new status).
    status.change(
        lambda: (gr.update(interactive=lab.can_draft()), gr.update(interactive=not lab.on_bundled())),
        None,
        [draft_button, restore_button],
        api_visibility="private",
    )
    drafts.input(load, [drafts, unlocked], outputs, api_visibility="private")
    for button, action, name in (
        (draft_button, draft_action, "draft_prompt"),
        (try_button, try_action, "try_prompt"),
        (adopt_button, adopt_action, "adopt_prompt"),
        (restore_button, restore_action, "restore_prompt"),
    ):
        button.click(
            guarded(action),
            [drafts, unlocked],
            outputs,
            api_name=name,
            api_visibility=visibility,  # type: ignore[arg-type]
        )
