"""What the docs don't answer: the questions they were silent on or answered badly, grouped by need.

The loop's last step is the docs themselves. Every question the retriever found the
docs silent on (the reply "the docs don't cover this", logged with the abstain prompt's
version) and every answer rated bad (a reviewer's verdict, else the user's thumb) is a
need the docs may not meet, unless its reviewer said the model's wording or a false
"the docs are silent" was what went wrong. Grouped by meaning (`qa.gaps`) and counted, most asked
first, with the page the search came closest to and what reviewers said, they tell a
maintainer what to write next. In the Review tab and `python app.py gaps`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import gradio as gr

from feedback.records import Exchange
from qa.gaps import group_similar
from qa.prompts import ABSTAIN
from ui.context import AppContext
from ui.render import literal_markdown

SCANNED = 2000  # latest answers read: embedding their questions takes ~3 s here
SHOWN_GROUPS = 15
OTHER_WORDINGS = 2  # of a group, besides its newest question
# A failure whose reviewer ticked only these is the model's wording or a false "the docs are silent",
# not a need the docs leave unmet (`feedback.records.PROBLEMS` keys).
NOT_DOCS_PROBLEMS = frozenset({"unsupported", "unclear", "false_abstain"})
GAPS_HINT = "Groups the questions the docs were silent on, or answered badly, by what was asked."


@dataclass
class Gap:
    """One need the docs leave unanswered: its questions (newest first) and what is known of them."""

    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def silent(self) -> int:
        return sum(abstained(e) for e in self.exchanges)

    @property
    def rated_bad(self) -> int:
        return sum(e.verdict == "bad" for e in self.exchanges)

    @property
    def comments(self) -> list[str]:
        said = [e.reviewer_comment or e.user_comment for e in self.exchanges if e.verdict == "bad"]
        return list(dict.fromkeys(c.strip() for c in said if c.strip()))

    @property
    def closest(self) -> str:
        """The place the searches came closest to most often: where to write the answer."""
        places = Counter(
            " › ".join(
                filter(None, (str(e.retrieved[0].get("source", "")), str(e.retrieved[0].get("section", ""))))
            )
            for e in self.exchanges
            if e.retrieved
        )
        return places.most_common(1)[0][0] if places else ""


def abstained(exchange: Exchange) -> bool:
    """Whether the reply was "the docs don't cover this" (no model wrote it)."""
    return exchange.prompt_version.startswith(f"{ABSTAIN}-")


def docs_gaps(ctx: AppContext, since: str | None = None) -> tuple[list[Gap], int]:
    """The groups of unanswered needs among the latest `SCANNED` answers (since `since`), and how many were read."""
    latest = ctx.log.recent(SCANNED, since=since)
    failed = [
        e
        for e in latest
        if (abstained(e) or e.verdict == "bad") and not e.rejected_only_for(NOT_DOCS_PROBLEMS)
    ]
    if not failed:
        return [], len(latest)
    retriever = getattr(ctx.chain, "retriever", None)
    embeddings = getattr(retriever, "embeddings", None)
    if embeddings is None:
        from qa.embeddings import make_embeddings

        embeddings = make_embeddings(ctx.settings)
    groups = group_similar([e.standalone_question or e.question for e in failed], embeddings)
    return [Gap([failed[i] for i in group]) for group in groups], len(latest)


def gaps_markdown(gaps: list[Gap], scanned: int, *, plain: bool = False) -> str:
    """The groups, most asked first, as Markdown (questions as typed) or as plain text for a shell."""
    text = (lambda s: s) if plain else literal_markdown
    silent, bad = sum(g.silent for g in gaps), sum(g.rated_bad for g in gaps)
    head = (
        f"Of the latest {scanned} answers, {silent} found the docs silent and {bad} "
        f"{'was' if bad == 1 else 'were'} rated bad: "
        f"{sum(len(g.exchanges) for g in gaps)} questions in {len(gaps)} group(s) of the same need."
        if gaps
        else f"Of the latest {scanned} answers, none found the docs silent or was rated bad."
    )
    lines = [head if plain else f"**What the docs don't answer.** {head}"]
    for n, gap in enumerate(gaps[:SHOWN_GROUPS], start=1):
        newest, *others = [e.standalone_question or e.question for e in gap.exchanges]
        counts = ", ".join(
            part
            for part in (
                f"silent {gap.silent}" if gap.silent else "",
                f"rated bad {gap.rated_bad}" if gap.rated_bad else "",
            )
            if part
        )
        line = f"{n}. {len(gap.exchanges)}× “{text(newest)}” ({counts})"
        wordings = list(dict.fromkeys(q for q in others if q != newest))
        if wordings:
            shown = "; ".join(f"“{text(q)}”" for q in wordings[:OTHER_WORDINGS])
            more = f" and {len(wordings) - OTHER_WORDINGS} more" if len(wordings) > OTHER_WORDINGS else ""
            line += f"; also asked as {shown}{more}"
        if gap.closest:
            line += f". Closest page: {gap.closest if plain else text(gap.closest)}"
        if gap.comments:
            line += f". Said: “{text(gap.comments[0])}”"
        lines.append(line)
    if len(gaps) > SHOWN_GROUPS:
        lines.append(f"… and {len(gaps) - SHOWN_GROUPS} more group(s) asked once or twice.")
    return "\n".join(lines) if plain else "\n\n".join(lines)


def build_gaps_panel(ctx: AppContext, unlocked: gr.State, visibility: str) -> None:
    """Render the panel in the current page (`unlocked`: the review page's password gate)."""
    with gr.Row():
        shown = gr.Markdown(GAPS_HINT, elem_id="docs-gaps")
        find = gr.Button(
            "Find what the docs don't answer", size="sm", scale=0, min_width=260, elem_id="find-gaps"
        )

    def find_gaps(open_: bool) -> str:
        """Group the latest answers' failed questions (seconds: each question is embedded)."""
        if not open_:
            raise gr.Error("Enter the reviewer password first.")
        return gaps_markdown(*docs_gaps(ctx))

    find.click(find_gaps, unlocked, shown, api_name="docs_gaps", api_visibility=visibility)
