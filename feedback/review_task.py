"""What a reviewer sees in Label Studio: the labeling config and what a task holds.

The view (LABEL_CONFIG, its CSS, and the configs earlier versions shipped), the project's
description, instructions and reviewer settings, and a task's data made from an exchange: the
question as shown, the answer and its sources as HTML this module renders and escapes, what the
user said, the hints, and the user's thumb as the verdict pre-selected for the reviewer (in the
names of the config's controls, which `feedback.labelstudio` reads verdicts back by).

Apart from `feedback.labelstudio` because a reviewer's view changes with the product (what it
takes to judge an answer), while the client code changes with the SDK. Nothing here calls Label
Studio or imports its SDK: `feedback.labelstudio` sends what this builds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from markdown_it import MarkdownIt

from feedback.log import Exchange, Rating
from feedback.records import PROBLEMS, USER_PROBLEMS, problem_words

# The user's thumb reaches reviewers as a prediction of this "model" (the name Label Studio shows on it).
USER_MODEL_VERSION = "user-feedback"
# The names of the config's controls: a prediction's or a verdict's result names them, and
# `feedback.labelstudio.parse_annotation` reads an annotation by them.
RATING_FIELD = "rating"
COMMENT_FIELD = "comment"
PROBLEMS_FIELD = "problems"

# What a reviewer sees, in two columns: on the left what is judged (the question, the answer
# rendered from its Markdown with its [n] citations linked to the docs, and its sources with links
# and quoted lines); on the right, kept in view while a long answer scrolls, what the user said,
# the hints (a model's pre-rating, a reused verdict) and the verdict. All but the verdict is task
# data, read-only, so the reviewer's comment box starts empty. The prediction pre-selects the
# user's thumb; the reviewer confirms or changes it (keys 1 and 2). A Bad verdict opens what was
# wrong (`PROBLEMS`' labels, keys 3 to 8: a label changed later makes this config one of
# PREVIOUS_LABEL_CONFIGS). The answer and sources are HTML this module renders and escapes itself
# (`answer_html`, `sources_html`): Label Studio's Text tag drops the indentation of code blocks.
# The CSS avoids `>` (Label Studio sanitizes a <Style> as HTML) and fixed colours (its dark theme);
# code needs `!important` over the font Label Studio gives everything in a HyperText.
REVIEW_CSS = """
    .dqa-cols { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 0 28px; }
    .dqa-main { flex: 3 1 440px; min-width: 0; }
    .dqa-side { flex: 2 1 280px; min-width: 0; position: sticky; top: 0; }
    .dqa-html { line-height: 1.5; overflow-wrap: anywhere; }
    .dqa-html p, .dqa-html ul, .dqa-html ol { margin: 0 0 8px 0; }
    .dqa-html ul, .dqa-html ol { padding-left: 22px; }
    .dqa-html ul { list-style: disc; }
    .dqa-html ol { list-style: decimal; }
    .dqa-html li { display: list-item; }
    .dqa-html .dqa-sources { list-style: none; padding-left: 0; }
    .dqa-html pre { background: rgba(127, 127, 127, 0.12); padding: 8px 10px; border-radius: 4px;
      overflow-x: auto; white-space: pre; font-size: 13px; line-height: 1.4; margin: 0 0 8px 0; }
    .dqa-html code, .dqa-html pre { font-family: ui-monospace, Menlo, Consolas, monospace !important; }
    .dqa-html code { font-size: 13px;
      background: rgba(127, 127, 127, 0.12); padding: 0 3px; border-radius: 3px; }
    .dqa-html pre code { background: none; padding: 0; }
    .dqa-html table { border-collapse: collapse; margin: 0 0 8px 0; }
    .dqa-html th, .dqa-html td { border: 1px solid rgba(127, 127, 127, 0.4); padding: 2px 6px; }
    .dqa-html blockquote { margin: 0 0 8px 0; padding-left: 10px; border-left: 3px solid rgba(127, 127, 127, 0.4); }
    .dqa-html .dqa-literal { white-space: pre-wrap; }
    .dqa-html .dqa-cite { font-size: 0.85em; font-weight: 600; }
    .dqa-html .dqa-note { opacity: 0.75; font-size: 13px; }
    .dqa-html .dqa-quote { opacity: 0.8; font-size: 13px; }
    .dqa-html .dqa-sources li { margin-bottom: 6px; }
    .dqa-html details summary { cursor: pointer; opacity: 0.75; font-size: 13px; }
"""
LABEL_CONFIG_TEMPLATE = """<View>
  <Style>{css}</Style>
  <View className="dqa-cols">
    <View className="dqa-main">
      <Header value="Question (what the user asked)" {h}/>
      <Text name="question" value="$question"/>
      <Header value="Answer (what the app replied: this is what you judge)" {h}/>
      <HyperText name="answer" value="$answer_html" inline="true" clickableLinks="true" selectionEnabled="false"/>
      <Header value="Sources (what the answer was given; links open the docs at the answer's commit)" {h}/>
      <HyperText name="sources" value="$sources_html" inline="true" clickableLinks="true" selectionEnabled="false"/>
    </View>
    <View className="dqa-side">
      <Header value="What the user said (their thumb and comment, read-only)" {h}/>
      <Text name="user_feedback" value="$user_feedback"/>
      <Header value="Hints, not verdicts (a model's pre-rating; a reused verdict)" {h}/>
      <Text name="hints" value="$hints"/>
      <Header value="Your verdict: a good answer, given the sources? (pre-selected: the user's thumb)" {h}/>
      <Choices name="rating" toName="answer" choice="single-radio" showInline="true" required="true">
        <Choice value="Good" hotkey="1"/>
        <Choice value="Bad" hotkey="2"/>
      </Choices>
      <View visibleWhen="choice-selected" whenTagName="rating" whenChoiceValue="Bad">
        <Header value="What was wrong? (optional, any that apply)" {h}/>
        <Choices name="problems" toName="answer" choice="multiple" showInline="true">
{problem_choices}
        </Choices>
      </View>
      <Header value="Your comment (optional)" {h}/>
      <TextArea name="comment" toName="answer" rows="4" maxSubmissions="1" editable="true" showSubmitButton="false"
        placeholder="What is wrong, what would be right. Saved with Submit."/>
    </View>
  </View>
</View>
"""
# Label Studio's headers are sized for titles: these are small ones, so the verdict fits beside a long answer.
HEADER_STYLE = 'size="5" style="margin: 14px 0 4px 0; font-size: 15px; font-weight: 600; line-height: 1.3"'
LABEL_CONFIG = (LABEL_CONFIG_TEMPLATE.replace("{css}", REVIEW_CSS).replace("{h}", HEADER_STYLE)).replace(
    "{problem_choices}",
    "\n".join(
        f'          <Choice value="{label}" hotkey="{n}"/>' for n, label in enumerate(PROBLEMS.values(), 3)
    ),
)

# Configs earlier versions of the app created projects with, oldest first: upgraded to LABEL_CONFIG
# on connect. A config that is none of them (edited by hand in Label Studio) is left alone.
PREVIOUS_LABEL_CONFIGS = (
    """<View>
  <Header value="Question"/>
  <Text name="question" value="$question"/>
  <Header value="Answer"/>
  <Text name="answer" value="$answer"/>
  <Header value="Sources"/>
  <Text name="sources" value="$sources"/>
  <Header value="Is this a good answer to the question, given the sources?"/>
  <Choices name="rating" toName="answer" choice="single" showInline="true" required="true">
    <Choice value="Good"/>
    <Choice value="Bad"/>
  </Choices>
  <Header value="Comment (what is wrong, what would be right)"/>
  <TextArea name="comment" toName="answer" rows="3" maxSubmissions="1" editable="true"/>
</View>
""",
    """<View>
  <Header value="Question (what the user asked)"/>
  <Text name="question" value="$question"/>
  <Header value="Answer (what the app replied: this is what you judge)"/>
  <Text name="answer" value="$answer"/>
  <Header value="Sources (the documentation passages the answer was given)"/>
  <Text name="sources" value="$sources"/>
  <Header value="What the user said (their thumb and comment, read-only)"/>
  <Text name="user_feedback" value="$user_feedback"/>
  <Header value="Your verdict: is this a good answer to the question, given the sources? (pre-selected: the user's thumb)"/>
  <Choices name="rating" toName="answer" choice="single-radio" showInline="true" required="true">
    <Choice value="Good"/>
    <Choice value="Bad"/>
  </Choices>
  <Header value="Your comment (optional): what is wrong, what would be right"/>
  <TextArea name="comment" toName="answer" rows="3" maxSubmissions="1" editable="true"/>
</View>
""",
    """<View>
  <Header value="Question (what the user asked)"/>
  <Text name="question" value="$question"/>
  <Header value="Answer (what the app replied: this is what you judge)"/>
  <Text name="answer" value="$answer"/>
  <Header value="Sources (the documentation passages the answer was given)"/>
  <Text name="sources" value="$sources"/>
  <Header value="What the user said (their thumb and comment, read-only)"/>
  <Text name="user_feedback" value="$user_feedback"/>
  <Header value="Hints, not verdicts (a model's pre-rating of the answer; a reviewer's earlier verdict it reused)"/>
  <Text name="hints" value="$hints"/>
  <Header value="Your verdict: is this a good answer to the question, given the sources? (pre-selected: the user's thumb)"/>
  <Choices name="rating" toName="answer" choice="single-radio" showInline="true" required="true">
    <Choice value="Good"/>
    <Choice value="Bad"/>
  </Choices>
  <Header value="Your comment (optional): what is wrong, what would be right"/>
  <TextArea name="comment" toName="answer" rows="3" maxSubmissions="1" editable="true"/>
</View>
""",
    """<View>
  <Header value="Question (what the user asked)"/>
  <Text name="question" value="$question"/>
  <Header value="Answer (what the app replied: this is what you judge)"/>
  <Text name="answer" value="$answer"/>
  <Header value="Sources (the documentation passages the answer was given)"/>
  <Text name="sources" value="$sources"/>
  <Header value="What the user said (their thumb and comment, read-only)"/>
  <Text name="user_feedback" value="$user_feedback"/>
  <Header value="Hints, not verdicts (a model's pre-rating of the answer; a reviewer's earlier verdict it reused)"/>
  <Text name="hints" value="$hints"/>
  <Header value="Your verdict: is this a good answer to the question, given the sources? (pre-selected: the user's thumb)"/>
  <Choices name="rating" toName="answer" choice="single-radio" showInline="true" required="true">
    <Choice value="Good"/>
    <Choice value="Bad"/>
  </Choices>
  <View visibleWhen="choice-selected" whenTagName="rating" whenChoiceValue="Bad">
    <Header value="What was wrong? (optional, any that apply)"/>
    <Choices name="problems" toName="answer" choice="multiple" showInline="true">
      <Choice value="Wrong passages: the sources don't answer it"/>
      <Choice value="Says what the sources don't"/>
      <Choice value="Incomplete"/>
      <Choice value="Unclear or badly written"/>
      <Choice value="Should have said the docs don't cover it"/>
      <Choice value="The docs do cover it"/>
    </Choices>
  </View>
  <Header value="Your comment (optional): what is wrong, what would be right"/>
  <TextArea name="comment" toName="answer" rows="3" maxSubmissions="1" editable="true"/>
</View>
""",
)

PROJECT_DESCRIPTION = (
    "Answers of the docs Q&A app that users rated, one task each. Check the answer against its sources "
    "and submit Good or Bad (the user's thumb is pre-selected); for Bad, tick what was wrong. Start with "
    "the tabs: To review, Thumbs down, Pre-rated Bad, Docs silent. The app has your verdict within "
    "seconds and counts it over the user's thumb. More under Instructions, at the top while labeling."
)

# Shown when a reviewer starts labeling and behind the Instructions button at the top: what to judge,
# the keys, and what each button does to the app's log (feedback.log.review).
INSTRUCTIONS = """<h3>Reviewing the docs Q&amp;A app's answers</h3>
<p>Each task is one answer a user rated. <b>Judge the answer against its sources</b>: is it right,
complete and supported by the passages it cites? Open a source's link, or a [n] in the answer, to read
the page at the commit the answer was given from.</p>
<ul>
<li><b>Good</b> (key <b>1</b>) or <b>Bad</b> (key <b>2</b>). The user's thumb is pre-selected: confirm
or change it.</li>
<li>For Bad, tick <b>what was wrong</b> (keys <b>3</b>–<b>8</b>): it tells the maintainers what to fix.
"Wrong passages" also ranks what the answer cited lower for similar questions.</li>
<li><b>Your comment</b> is optional: what is wrong, what would be right. Type it and submit; the
comment box starts empty (the user's own comment is under "What the user said").</li>
<li><b>Submit</b> (Ctrl+Enter) stores your verdict: the app has it within seconds, counts it over the
user's thumb, and reuses it when the same question is asked again (an approval as an example, a
rejection with your comment as a mistake not to repeat). <b>Update</b> changes it; deleting your
annotation withdraws it.</li>
<li><b>Skip</b> (Ctrl+Space) gives no verdict: the user's thumb keeps counting, and the task goes to
the other reviewers.</li>
<li><b>Hints are not verdicts</b>: a model's pre-rating of the answer, or the verdict on an earlier
answer to the same question that this one was given with.</li>
<li>An answer saying the docs don't cover the question was written by no model: judge whether the
docs really don't ("The docs do cover it" if they do).</li>
</ul>
<p>The Data Manager's tabs: <b>To review</b> (no verdict yet; <b>Label All Tasks</b> goes through
these), <b>Thumbs down</b> and <b>Pre-rated Bad</b> (the answers to look at first, not yet reviewed: in
the tab, pick <b>Label Tasks As Displayed</b> from the arrow beside Label All Tasks to go through just
those), <b>Docs silent</b>, <b>Reviewed</b>, <b>All answers</b>. Verdicts given in the app's Review
tab arrive here as annotations by the app's API key (an answer no user rated gets a task for it, with
"No thumb" under What the user said).</p>"""

# Project settings for reviewers (applied on create and when the config is upgraded): the
# instructions shown; Skip offered; no annotation without a verdict; one verdict per answer; the
# user's thumb pre-selected from its prediction.
PROJECT_SETTINGS: dict[str, Any] = {
    "description": PROJECT_DESCRIPTION,
    "expert_instruction": INSTRUCTIONS,
    "show_instruction": True,
    "show_skip_button": True,
    "enable_empty_annotation": False,
    "maximum_annotations": 1,
    "show_collab_predictions": True,
}


# --- task content -------------------------------------------------------------------------
def _place(chunk: Mapping[str, Any]) -> str:
    """A passage's file and section as text: "docs/start.md — Start > Ports"."""
    place = str(chunk.get("source", "") or "?")
    return f"{place} — {chunk['section']}" if chunk.get("section") else place


def format_sources(chunks: Sequence[Mapping[str, Any]]) -> str:
    """Sources as plain text, a line per chunk with its link and quoted lines: the Data Manager's
    `sources` column and exports (the view shows `sources_html`)."""
    if not chunks:
        return "(no sources)"
    lines = []
    for i, chunk in enumerate(chunks, 1):
        n = chunk.get("n", i)
        place = _place(chunk)
        score = chunk.get("score")
        if isinstance(score, int | float):
            place += f" (score {score:.2f})"
        if chunk.get("url"):
            place += f"\n    {chunk['url']}"
        if chunk.get("quote"):  # the passage's lines that answer the question, as the chat shows them
            place += f"\n    “{chunk['quote']}”"
        lines.append(f"[{n}] {place}")
    return "\n".join(lines)


# Answers are CommonMark with GitHub tables, as the chat renders them. Raw HTML in an answer shows
# as typed (it is about Label Studio's XML tags as often as not), and images stay links: an answer
# must never make a reviewer's browser fetch from a host of its choosing.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")


def _link_open(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    """A link in an answer opens in a new tab: followed in place, it would take the reviewer off the task."""
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", "noopener noreferrer")
    return self.renderToken(tokens, idx, options, env)


_MARKDOWN.add_render_rule("link_open", _link_open)
_CITATION = re.compile(r"\[(\d{1,3})\]")
_TAG = re.compile(r"(<[^>]*>)")


def _link(url: str, text: str, title: str = "", css: str = "") -> str:
    """`text` (HTML) as a link to `url` opening in a new tab; just `text` when `url` is no web address."""
    title_attr = f' title="{html.escape(title)}"' if title else ""
    css_attr = f' class="{css}"' if css else ""
    if not re.match(r"https?://", url or ""):
        return f"<span{css_attr}{title_attr}>{text}</span>" if (title or css) else text
    return f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer"{css_attr}{title_attr}>{text}</a>'


def _link_citations(rendered: str, chunks: Sequence[Mapping[str, Any]]) -> str:
    """Turn each [n] of rendered answer HTML into a link to source n's page (outside code and links)."""
    by_n = {int(c["n"]): c for c in chunks if isinstance(c.get("n"), int)}
    if not by_n:
        return rendered
    out, inside = [], 0  # depth of <code>/<pre>/<a>, where [n] is text to leave alone
    for piece in _TAG.split(rendered):
        if piece.startswith("<"):
            name = re.match(r"</?([a-z]+)", piece)
            if name and name.group(1) in ("code", "pre", "a"):
                inside += -1 if piece.startswith("</") else 1
            out.append(piece)
        elif inside:
            out.append(piece)
        else:

            def cite(match: re.Match[str]) -> str:
                chunk = by_n.get(int(match.group(1)))
                if chunk is None:
                    return match.group(0)
                return _link(str(chunk.get("url") or ""), match.group(0), _place(chunk), "dqa-cite")

            out.append(_CITATION.sub(cite, piece))
    return "".join(out)


def answer_html(exchange: Exchange) -> str:
    """The answer as reviewers read it (`$answer_html`): its Markdown rendered, code kept as written.

    Its [n] link to the passage the model was given as n. The "docs don't cover this"
    reply is a template around the user's question, so it is shown exactly as typed.
    """
    text = exchange.answer or ""
    if not text.strip():
        body = '<p class="dqa-note">(an empty answer)</p>'
    elif exchange.abstained:
        body = f'<div class="dqa-literal">{html.escape(text)}</div>'
    else:
        body = _link_citations(_MARKDOWN.render(text), exchange.retrieved or exchange.cited)
    return f'<div class="dqa-html dqa-answer">{body}</div>'


def _source_items(chunks: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for i, chunk in enumerate(chunks, 1):
        n = chunk.get("n", i)
        item = f"<b>[{html.escape(str(n))}]</b> " + _link(
            str(chunk.get("url") or ""), html.escape(_place(chunk))
        )
        score = chunk.get("score")
        if isinstance(score, int | float):
            item += f' <span class="dqa-note">score {score:.2f}</span>'
        if chunk.get("quote"):  # the passage's lines that answer the question, as the chat shows them
            item += f'<div class="dqa-quote">“{_MARKDOWN.renderInline(str(chunk["quote"]))}”</div>'
        items.append(f"<li>{item}</li>")
    return f'<ul class="dqa-sources">{"".join(items)}</ul>'


def sources_html(exchange: Exchange) -> str:
    """The passages behind the answer (`$sources_html`): those it cited, linked, with their quoted
    lines, then the others the model was given, folded.

    A reviewer ticking "Wrong passages" or "The docs do cover it" needs to see what was found
    and not used too. For a "docs don't cover this" reply, no model read them: the view says so.
    """
    cited, retrieved = exchange.cited, exchange.retrieved
    parts = []
    if exchange.abstained:
        parts.append(
            '<p class="dqa-note">The app found the docs silent and replied with its template: no model '
            "wrote this reply. The closest passages it searched, none close enough to answer from:</p>"
        )
        parts.append(_source_items(retrieved) if retrieved else '<p class="dqa-note">(none)</p>')
    elif cited:
        cited_ns = {c.get("n") for c in cited}
        rest = [c for c in retrieved if c.get("n") not in cited_ns]
        parts.append(f'<p class="dqa-note">Cited by the answer ({len(cited)}):</p>{_source_items(cited)}')
        if rest:
            parts.append(
                f"<details><summary>Also given to the model, not cited ({len(rest)})</summary>"
                f"{_source_items(rest)}</details>"
            )
    elif retrieved:
        parts.append(
            '<p class="dqa-note">The answer cites none of them. The passages the model was given:</p>'
            + _source_items(retrieved)
        )
    else:
        parts.append('<p class="dqa-note">(no sources)</p>')
    return f'<div class="dqa-html">{"".join(parts)}</div>'


def task_data(
    exchange: Exchange, rating: Rating | None, comment: str, problems: Sequence[str] = ()
) -> dict[str, Any]:
    """Task data: what reviewers see plus what maps it back (exchange_id) and slices reports.

    `answer` and `sources` stay plain text for the Data Manager's columns, filters and exports;
    the view shows their HTML.
    """
    return {
        "exchange_id": exchange.id,
        "question": shown_question(exchange),
        "answer": exchange.answer,
        "sources": format_sources(exchange.cited or exchange.retrieved),
        "answer_html": answer_html(exchange),
        "sources_html": sources_html(exchange),
        "standalone_question": exchange.standalone_question,
        "cited": exchange.cited,
        "retrieved": exchange.retrieved,
        "prompt_version": exchange.prompt_version,
        "model": exchange.model,
        "docs_commit": exchange.docs_commit,
        "session": exchange.session,
        "time": exchange.time,
        "user_rating": rating,
        "user_comment": comment,
        "user_problems": list(problems),
        "user_feedback": user_feedback(rating, comment, problems),
        "hints": hints(exchange),
        "pre_rating": exchange.pre_rating or "",
        "pre_rating_reason": exchange.pre_rating_reason or "",
        "pre_rating_model": exchange.pre_rating_model or "",
        "pre_rating_prompt": exchange.pre_rating_prompt or "",
        "reused_from": exchange.reused_from or "",
        "reused_verdict": exchange.reused_verdict or "",
    }


def shown_question(exchange: Exchange) -> str:
    """The question as the view shows it: what the user typed, and what was searched if not that."""
    searched = exchange.searched_as()
    return (
        f"{exchange.question}\n\n(A follow-up in a conversation; searched as: “{searched}”)"
        if searched
        else exchange.question
    )


NO_HINTS = "None: no model pre-rated this answer, and it reused no reviewer's verdict."
# A "docs don't cover this" reply is never pre-rated: no model wrote it, so there is nothing to judge
# but the decision to abstain, which is the reviewer's to make ("The docs do cover it").
SILENT_HINT = (
    "Not pre-rated: the app found the docs silent and replied with its template, without a model. "
    "Judge whether the docs really don't cover the question."
)


def hints(exchange: Exchange) -> str:
    """What the app knows about the answer that is not a verdict, as the read-only `$hints` text.

    A model's pre-rating (`qa.judge`, arriving seconds after the answer: the task is then
    rewritten) and the reviewer's verdict on an earlier answer that this one was given with.
    Never empty: Label Studio wants the key in every task, and the view says there is none.
    """
    lines = []
    if exchange.pre_rating:
        by = f" by {exchange.pre_rating_model}" if exchange.pre_rating_model else ""
        reason = f": {exchange.pre_rating_reason}" if exchange.pre_rating_reason else ""
        lines.append(f"Pre-rated {exchange.pre_rating.capitalize()}{by}{reason}")
    elif exchange.abstained:
        lines.append(SILENT_HINT)
    if exchange.reused_from:
        what = "approval" if exchange.reused_verdict == "good" else "rejection"
        lines.append(
            f"Given with a reviewer's {what} of an earlier answer to the same question "
            f"(exchange {exchange.reused_from})"
        )
    if exchange.helped_by:
        lines.append(
            "Ranked with the passages approved answers to similar questions cited "
            f"(exchange {', '.join(exchange.helped_by)})"
        )
    if exchange.lowered_by:
        lines.append(
            "Ranked lower: the passages reviewers marked wrong for similar questions "
            f"(exchange {', '.join(exchange.lowered_by)})"
        )
    return "\n".join(lines) or NO_HINTS


def user_feedback(rating: Rating | None, comment: str, problems: Sequence[str] = ()) -> str:
    """What the user said, as the read-only `$user_feedback` text reviewers see.

    Task data, not the prediction: a prediction pre-fills the reviewer's own
    fields, and the user's comment submitted unchanged would pass for the
    reviewer's. Never empty, so the view always says whether there was a comment.
    `rating=None`: a task made for a verdict given in the app's Review tab. What the user
    ticked as wrong follows the thumb, in their words ("Bad 👎: not what I asked").
    """
    if rating is None:
        return "No thumb: the user did not rate this answer (a reviewer judged it in the app)"
    thumb = "Good 👍" if rating == "good" else "Bad 👎"  # words first: not every font has the emoji
    said = problem_words(problems, USER_PROBLEMS)
    thumb += f": {said}" if said and rating == "bad" else ""
    comment = comment.strip()
    return f"{thumb}, comment: {comment}" if comment else f"{thumb} (no comment)"


def prediction_result(rating: Rating, problems: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The user's thumb (and what they ticked as wrong) as a pre-selected verdict reviewers
    accept or change.

    Not the comment: the reviewer's comment box starts empty (the user's comment is
    shown read-only from the task data, see `user_feedback`).
    """
    return verdict_result(rating, "", problems)


def verdict_result(rating: Rating, comment: str, problems: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A reviewer's verdict as an annotation's result: what the Review tab sends Label Studio."""
    result: list[dict[str, Any]] = [
        {
            "from_name": RATING_FIELD,
            "to_name": "answer",
            "type": "choices",
            "value": {"choices": ["Good" if rating == "good" else "Bad"]},
        }
    ]
    if problems and rating == "bad":
        result.append(
            {
                "from_name": PROBLEMS_FIELD,
                "to_name": "answer",
                "type": "choices",
                "value": {"choices": [PROBLEMS[p] for p in problems]},
            }
        )
    if comment.strip():
        result.append(
            {
                "from_name": COMMENT_FIELD,
                "to_name": "answer",
                "type": "textarea",
                "value": {"text": [comment]},
            }
        )
    return result
