"""The Review tab: accuracy over time, recent exchanges by verdict, inline reviewing, sync state.

Accuracy = good / rated: reviewer verdicts first, user thumbs where no reviewer
has looked (both figures shown). With REVIEWER_PASSWORD set, the tab's content
stays hidden until the password is entered (per browser session); the chat is
unaffected.
"""

from __future__ import annotations

import hmac

import gradio as gr
import pandas as pd

from feedback.config import pre_rating_summary
from feedback.records import PROBLEMS, USER_PROBLEMS, Exchange, problem_words
from qa.types import Source
from ui.accounts import signed_in
from ui.browser import browser_secret
from ui.context import AppContext
from ui.docs_panel import build_docs_panel
from ui.gaps import build_gaps_panel
from ui.prompt_lab import build_prompt_panel
from ui.render import literal_markdown, readable_time, renumber_citations, safe_markdown, sources_markdown

FLAGGED = "pre-rated bad, unreviewed"  # the answers a model flags, for reviewers to look at first
VERDICTS = ["all", "good", "bad", "unrated", FLAGGED]
SHOWN = ["100", "500", "2000", "all"]  # how many of the latest answers the table lists
DEFAULT_REVIEWER = "app reviewer"
REVIEWER_KEY = "docs-qa-reviewer"  # the browser keeps the reviewer's name under it
MAX_NAME = 100
EXCHANGE_COLUMNS = [
    "time",
    "question",
    "answer",
    "sources",
    "user",
    "pre-rating",
    "reviewer",
    "reviewed by",
    "verdict",
    "sync",
    "id",
]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def accuracy_frame(ctx: AppContext, by: str) -> pd.DataFrame:
    rows = ctx.log.accuracy(by=by)  # type: ignore[arg-type]
    return pd.DataFrame(
        [
            {
                by: r.key,
                "rated": r.rated,
                "accuracy": _pct(r.accuracy),
                "reviewer accuracy": _pct(r.reviewer_accuracy),
                "user accuracy": _pct(r.user_accuracy),
            }
            for r in rows
        ],
        columns=[by, "rated", "accuracy", "reviewer accuracy", "user accuracy"],
    )


def chart_frame(ctx: AppContext) -> pd.DataFrame:
    """Per-day accuracy in long form for gr.LinePlot: one line for the blended figure, one per source."""
    points = []
    for r in ctx.log.accuracy(by="day"):
        for series, value in (
            ("accuracy", r.accuracy),
            ("reviewers", r.reviewer_accuracy),
            ("users", r.user_accuracy),
        ):
            if value is not None:
                points.append({"day": r.key, "accuracy": round(value * 100, 1), "series": series})
    return pd.DataFrame(points, columns=["day", "accuracy", "series"])


def days_charted(frame: pd.DataFrame) -> int:
    """How many days `chart_frame` has figures for: one is drawn as dots, since a line needs two."""
    return int(frame["day"].nunique())


def reviewer_name(typed: str | None) -> str:
    """A reviewer's name as typed, with its spaces tidied and cut at `MAX_NAME`: stored and remembered so."""
    return " ".join((typed or "").split())[:MAX_NAME]


def name_shown(kept: str, request: gr.Request):  # noqa: ANN201 - a Gradio update
    """The reviewer's name on opening the tab: the account's, fixed, or the one this browser used last."""
    if account := signed_in(request):
        return gr.update(value=account, interactive=False)
    return kept or gr.update()


def _reviewed_by(reviewer: str, source: str | None) -> str:
    """Who gave the reviewer verdict, and where: this tab, or Label Studio (webhook or pull)."""
    if not source:
        return ""
    where = "Review tab" if source == "inline" else "Label Studio"
    return f"{reviewer} ({where})" if reviewer else where


# The table's `sync` column in words: "local" alone read like an error to a newcomer.
SYNC_WORDS = {
    "local": "not sent (unrated)",
    "pending": "waiting to be sent",
    "delivered": "in Label Studio",
}


def exchanges_frame(ctx: AppContext, verdict: str, shown: str = SHOWN[0]) -> pd.DataFrame:
    """The latest answers with `verdict` (one of VERDICTS); `shown`: how many ("all": every one)."""
    flagged = verdict == FLAGGED
    chosen = None if verdict == "all" or flagged else verdict
    limit = 0 if shown == "all" else int(shown)
    rows = []
    for e in ctx.log.recent(limit, verdict=chosen, flagged=flagged):  # type: ignore[arg-type]
        sources = ", ".join(f"[{c.get('n', '')}] {c.get('source', '')}" for c in e.cited)
        rows.append(
            {
                "time": e.time[:19].replace("T", " "),
                "question": e.question,
                "answer": e.answer[:300],
                "sources": sources,
                "user": e.user_rating or "",
                "pre-rating": e.pre_rating or "",
                # with what the reviewer ticked as wrong: "bad: wrong passages; incomplete"
                "reviewer": ": ".join(
                    filter(None, [e.reviewer_rating or "", problem_words(e.reviewer_problems)])
                ),
                "reviewed by": _reviewed_by(e.reviewer, e.reviewer_source),
                "verdict": e.verdict or "",
                "sync": SYNC_WORDS.get(e.sync, e.sync),
                "id": e.id,
            }
        )
    return pd.DataFrame(rows, columns=EXCHANGE_COLUMNS)


DETAIL_HINT = "Click an answer in the table to read it whole here, with its sources and their quoted lines."


def exchange_markdown(exchange: Exchange | None) -> str:
    """One answer as a reviewer judges it: the question, the whole answer, what the user said,
    and the sources with their quoted lines shown open (the table cuts answers at 300 characters)."""
    if exchange is None:
        return DETAIL_HINT
    said = {"good": "Good 👍", "bad": "Bad 👎"}.get(exchange.user_rating or "", "no thumb")
    if exchange.user_problems:  # in the user's words, as they ticked them
        said += ": " + problem_words(exchange.user_problems, USER_PROBLEMS)
    if exchange.user_comment:
        said += f", comment: {exchange.user_comment}"
    sources = [
        Source(
            n=int(c.get("n") or i),
            source=str(c.get("source") or ""),
            section=str(c.get("section") or ""),
            url=str(c.get("url") or ""),
            quote=str(c.get("quote") or ""),
        )
        for i, c in enumerate(exchange.cited, 1)
    ]
    answer, sources = renumber_citations(exchange.answer, sources)  # 1, 2, 3 as the chat showed them
    about = ", ".join(filter(None, [exchange.model, exchange.prompt_version, readable_time(exchange.time)]))
    searched = exchange.searched_as()  # a follow-up: what it was about
    return (
        f"**Question:** {literal_markdown(exchange.question)}\n\n"
        + (f"**Searched as** (a follow-up): {literal_markdown(searched)}\n\n" if searched else "")
        + f"**Answer** <small>({literal_markdown(about)})</small>\n\n"
        f"{safe_markdown(answer)}\n\n"
        f"**The user said:** {literal_markdown(said)}"
        + _pre_rating_line(exchange)
        + _reused_line(exchange)
        + sources_markdown(sources, folded=False)
    )


def _pre_rating_line(exchange: Exchange) -> str:
    """A model's pre-rating of the answer (`qa.judge`), shown as the hint it is."""
    if not exchange.pre_rating:
        return ""
    by = f" by {literal_markdown(exchange.pre_rating_model)}" if exchange.pre_rating_model else ""
    reason = f": {literal_markdown(exchange.pre_rating_reason)}" if exchange.pre_rating_reason else ""
    return (
        f"\n\n**Pre-rated {exchange.pre_rating.capitalize()}**{by}{reason}"
        " <small>(a model's hint, not a verdict)</small>"
    )


def _reused_line(exchange: Exchange) -> str:
    """Whether the answer was given with a reviewer's verdict on an earlier answer (`qa.precedents`)."""
    helped = (
        "\n\n**Ranked with** the passages approved answers to similar questions cited"
        f" (exchange {', '.join(f'`{i}`' for i in exchange.helped_by)})."
        if exchange.helped_by
        else ""
    ) + (
        "\n\n**Ranked lower:** the passages reviewers marked wrong for similar questions"
        f" (exchange {', '.join(f'`{i}`' for i in exchange.lowered_by)})."
        if exchange.lowered_by
        else ""
    )
    if not exchange.reused_from:
        return helped
    what = "approval" if exchange.reused_verdict == "good" else "rejection"
    return (
        f"\n\n**Given with** a reviewer's {what} of an earlier answer to the same question"
        f" (exchange `{exchange.reused_from}`)." + helped
    )


def problems_update(rating: str | None, problems: tuple[str, ...]) -> dict:
    """The form's problem boxes for an answer: its reviewer's ticks, shown only with a bad verdict."""
    return gr.update(value=list(problems), visible=rating == "bad")


def summary_markdown(ctx: AppContext) -> str:
    counts = ctx.log.counts()
    overall = ctx.log.accuracy(by="overall")
    row = overall[0] if overall else None
    sync = ctx.sync.status().message if ctx.sync else ""
    rejected = "".join(
        f"{found.summary}<br>"
        for found in (ctx.log.problems(), ctx.log.problems(by="user"))
        if found.rejected
    )
    return (
        f"**Accuracy:** {_pct(row.accuracy if row else None)} "
        f"(reviewers {_pct(row.reviewer_accuracy if row else None)}, users {_pct(row.user_accuracy if row else None)})"
        f" · {counts['exchanges']} answers, {counts['rated']} rated, {counts['reviewed']} reviewed\n\n"
        f"<small>{rejected}{pre_rating_summary(ctx.log.pre_rating_agreement(), ctx.settings)}"
        f"<br>{safe_markdown(sync)}</small>"
    )


def build_review_tab(ctx: AppContext, tab: gr.Tab | None = None) -> None:
    """Render the review page inside the current Tab (`tab`: refresh it each time it is opened).

    Without the refresh, a reviewer who chats first and then opens the tab would see the
    answers as they were when the page loaded, not the one just given.
    """
    locked = bool(ctx.settings.reviewer_password)
    visibility = "private" if locked else "public"

    def initial(fn):  # noqa: ANN001, ANN202 - a value computed on each page load, only when open
        # In the app the tab's own select fills it: nothing is read for chat users, and the page's
        # API lists no /lambda endpoints (Gradio gives each callable value a public load event).
        return None if locked or tab is not None else fn

    unlocked = gr.State(not locked)  # per browser session
    with gr.Column(visible=locked) as gate:
        password = gr.Textbox(label="Reviewer password", type="password", elem_id="reviewer-password")
        unlock = gr.Button("Open the review page")
    with gr.Column(visible=not locked) as page:
        summary = gr.Markdown(initial(lambda: summary_markdown(ctx)), elem_id="review-summary")
        # A line of one point draws nothing (Gradio shows its points only on hover): with one
        # day of ratings, the same figures are drawn as dots instead.
        one_day = not (locked or tab is not None) and days_charted(chart_frame(ctx)) == 1
        per_day = {
            "x": "day",
            "y": "accuracy",
            "color": "series",
            "title": "Accuracy per day (%)",
            "y_lim": [0, 100],
        }
        chart = gr.LinePlot(
            initial(lambda: chart_frame(ctx)),
            **per_day,
            visible=not one_day,
            elem_id="accuracy-chart",
        )
        dots = gr.ScatterPlot(
            initial(lambda: chart_frame(ctx)),
            **per_day,
            caption="One day of ratings so far: a line needs two.",
            visible=one_day,
            elem_id="accuracy-dots",
        )
        with gr.Row():
            by = gr.Dropdown(
                ["prompt_version", "model", "day", "reused", "pre_rating"],
                value="prompt_version",
                label="Accuracy by",
            )
            refresh = gr.Button("Refresh", size="sm")
        table = gr.Dataframe(
            initial(lambda: accuracy_frame(ctx, "prompt_version")),
            interactive=False,
            wrap=True,
            elem_id="accuracy-table",
        )
        with gr.Row():
            verdict = gr.Radio(VERDICTS, value="all", label="Show answers", elem_id="verdict-filter", scale=3)
            shown = gr.Dropdown(SHOWN, value=SHOWN[0], label="The latest", elem_id="review-shown", scale=1)
        exchanges = gr.Dataframe(
            initial(lambda: exchanges_frame(ctx, "all")),
            interactive=False,
            wrap=True,
            # The verdict columns on screen without scrolling; the answer is cut at 300 characters.
            column_widths=["9%", "15%", "22%", "12%", "5%", "6%", "6%", "8%", "5%", "5%", "7%"],
            show_search="search",  # find an answer by a word of its question, answer or source
            elem_id="exchanges-table",
        )
        detail = gr.Markdown(DETAIL_HINT, elem_id="review-detail", container=True)
        with gr.Row():
            exchange_id = gr.Textbox(label="Exchange id (click a row)", scale=3, elem_id="review-id")
            rating = gr.Radio(["good", "bad"], label="Your verdict", scale=1, elem_id="review-verdict")
            comment = gr.Textbox(label="Comment", scale=3, elem_id="review-comment")
            reviewer = gr.Textbox(
                label="Your name (shown with your verdicts)",
                placeholder=DEFAULT_REVIEWER,
                max_length=MAX_NAME,
                scale=2,
                elem_id="reviewer-name",
            )
            save = gr.Button("Save verdict", variant="primary", scale=1)
        # For a bad verdict: what was wrong (the report counts them; wrong passages rank lower for
        # similar questions). Hidden for a good one, as in Label Studio.
        problems = gr.CheckboxGroup(
            [(label, key) for key, label in PROBLEMS.items()],
            label="What was wrong? (optional, any that apply)",
            visible=False,
            elem_id="review-problems",
        )
        build_prompt_panel(ctx, unlocked, visibility)
        build_docs_panel(ctx, unlocked, visibility, tab)
        build_gaps_panel(ctx, unlocked, visibility)
    kept_name = gr.BrowserState("", storage_key=REVIEWER_KEY, secret=browser_secret(ctx.settings.data_dir))
    outputs = [summary, chart, dots, table, exchanges]

    def load(verdict_: str, by_: str, shown_: str, open_: bool):
        if not open_:
            raise gr.Error("Enter the reviewer password first.")
        frame = chart_frame(ctx)
        one_day = days_charted(frame) == 1
        return (
            summary_markdown(ctx),
            gr.update(value=frame, visible=not one_day),
            gr.update(value=frame, visible=one_day),
            accuracy_frame(ctx, by_),
            exchanges_frame(ctx, verdict_, shown_),
        )

    def open_page(given: str, verdict_: str, by_: str, shown_: str):
        if not hmac.compare_digest(given.encode(), ctx.settings.reviewer_password.encode()):
            gr.Warning("Wrong reviewer password.")
            return False, gr.update(), gr.update(), *(gr.update() for _ in outputs)
        return True, gr.update(visible=False), gr.update(visible=True), *load(verdict_, by_, shown_, True)

    def pick(frame: pd.DataFrame, open_: bool, evt: gr.SelectData):
        """A row clicked: its id, its current reviewer verdict and comment in the form, the answer whole.

        Never the previous row's: a verdict and comment left in the form would otherwise be
        saved onto the next answer clicked.
        """
        if not open_:
            raise gr.Error("Enter the reviewer password first.")
        if evt.row_value:  # the row as shown, also after the table was sorted or searched
            ex_id = str(evt.row_value[EXCHANGE_COLUMNS.index("id")])
        else:
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            ex_id = str(frame.iloc[row]["id"]) if 0 <= row < len(frame) else ""
        exchange = ctx.log.get(ex_id) if ex_id else None
        if exchange is None:
            return ex_id, None, "", problems_update(None, ()), exchange_markdown(None)
        return (
            ex_id,
            exchange.reviewer_rating,
            exchange.reviewer_comment,
            problems_update(exchange.reviewer_rating, exchange.reviewer_problems),
            exchange_markdown(exchange),
        )

    def save_verdict(
        ex_id: str,
        rating_: str | None,
        comment_: str,
        problems_: list[str] | None,
        verdict_: str,
        by_: str,
        name: str,
        shown_: str,
        open_: bool,
        request: gr.Request,
    ):
        if not open_:
            raise gr.Error("Enter the reviewer password first.")
        ex_id = (ex_id or "").strip()
        if not ex_id or rating_ not in ("good", "bad"):
            gr.Warning("Pick an answer (click its row) and a verdict first.")
        elif ctx.log.get(ex_id) is None:
            gr.Warning(f"No answer with id {ex_id!r}.")
        else:
            who = signed_in(request) or reviewer_name(name) or DEFAULT_REVIEWER
            ctx.log.review(
                ex_id, rating_, comment_ or "", reviewer=who, source="inline", problems=problems_ or ()
            )
            if ctx.sync is not None and ctx.sync.configured and (failing := ctx.sync.status().last_error):
                # the last delivery failed: saved, but not on its way until that is fixed
                gr.Warning(f"Verdict saved in the app's log; it waits to be sent: {failing}")
            elif ctx.sync is not None and ctx.sync.configured:
                gr.Info("Verdict saved. Label Studio gets it as an annotation on this answer's task.")
            else:
                gr.Info("Verdict saved (in the app's log: Label Studio is not configured).")
        return load(verdict_, by_, shown_, open_)

    gate_outputs = [unlocked, gate, page, *outputs]
    unlock.click(open_page, [password, verdict, by, shown], gate_outputs, api_visibility="private")
    password.submit(open_page, [password, verdict, by, shown], gate_outputs, api_visibility="private")
    gr.on(
        [refresh.click, verdict.change, by.change, shown.change],
        load,
        [verdict, by, shown, unlocked],
        outputs,
        api_name="review_data",
        api_visibility=visibility,
    )
    if tab is not None:

        def reopen(verdict_: str, by_: str, shown_: str, open_: bool):
            return load(verdict_, by_, shown_, open_) if open_ else tuple(gr.update() for _ in outputs)

        tab.select(reopen, [verdict, by, shown, unlocked], outputs, api_visibility="private")
        # The name this browser reviewed under last time, so each verdict is not "app reviewer".
        # Signed in (`python app.py users add`): their account's name, which verdicts are saved under.
        tab.select(name_shown, kept_name, reviewer, api_visibility="private")
    reviewer.change(reviewer_name, reviewer, kept_name, api_visibility="private")
    exchanges.select(
        pick,
        [exchanges, unlocked],
        [exchange_id, rating, comment, problems, detail],
        api_visibility="private",
    )
    rating.input(lambda r: gr.update(visible=r == "bad"), rating, problems, api_visibility="private")
    save.click(
        save_verdict,
        [exchange_id, rating, comment, problems, verdict, by, reviewer, shown, unlocked],
        outputs,
        api_name="review",
        api_visibility=visibility,
    )
