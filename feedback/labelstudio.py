"""Label Studio as the reviewers' copy of the feedback log (label-studio-sdk 2.x).

Everything that knows Label Studio's API lives here: the labeling config, the
shape of a task and of the user's prediction, reading a verdict out of an
annotation, get-or-create of the project and of the webhook, and turning SDK
errors into sentences a person can act on. `feedback.sync` decides *when* to
call it; nothing here touches the local log.

SDK pitfalls handled here: the default base URL is localhost:8000 (we always pass
it), `max_retries` defaults to 2 and retries POSTs too (duplicate tasks: we pass
0 and retry ourselves, idempotently), the default timeout is 60 s (we pass a
short one), `projects.list(title=...)` matches by substring (we compare titles).
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from markdown_it import MarkdownIt

from feedback.config import KeyOrigin
from feedback.log import Delivery, Exchange, FeedbackLog, Rating, RatingEvent
from feedback.records import PROBLEMS, USER_PROBLEMS, parse_problems, problem_words

log = logging.getLogger(__name__)

USER_MODEL_VERSION = "user-feedback"
RATING_FIELD = "rating"
COMMENT_FIELD = "comment"
PROBLEMS_FIELD = "problems"
WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]
WEBHOOK_SECRET_HEADER = "X-Webhook-Secret"

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


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    value = getattr(obj, key, default)
    if value is default and hasattr(obj, "model_extra") and obj.model_extra:
        return obj.model_extra.get(key, default)
    return value


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
    try:
        client.projects.update(id=project_id, label_config=wanted, **PROJECT_SETTINGS)
    except ApiError as exc:
        if not is_refusal(exc):
            raise
        log.warning(
            "Label Studio project %s keeps its old labeling config: updating it was refused (%s). "
            "Reviewers do not see what new tasks hold in their data (user_feedback, hints, answer_html); "
            "paste feedback/labelstudio.py LABEL_CONFIG into the project's Labeling Interface by hand.",
            project_id,
            describe_error(exc, ""),
        )
        return False
    log.info("Label Studio project %s: labeling config upgraded", project_id)
    _try_views(client, project_id)
    return True


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


def _try_views(client: LabelStudio, project_id: int) -> None:
    """`ensure_views`, where Label Studio refusing it (4xx) is a warning, not a failed sync."""
    try:
        ensure_views(client, project_id)
    except ApiError as exc:
        if not is_refusal(exc):
            raise
        log.warning(
            "Label Studio project %s: the Data Manager's review tabs were not made (%s)",
            project_id,
            describe_error(exc, ""),
        )


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


def _try_backfill(client: LabelStudio, project_id: int) -> None:
    """`backfill`, where Label Studio refusing it (4xx) is a warning, not a failed sync."""
    try:
        backfill(client, project_id)
    except ApiError as exc:
        if not is_refusal(exc):
            raise
        log.warning(
            "Label Studio project %s: earlier tasks keep an empty 'What the user said' or hints (%s)",
            project_id,
            describe_error(exc, ""),
        )


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
                _try_backfill(client, project_id)
            return project_id
        project = client.projects.create(title=title, label_config=LABEL_CONFIG, **PROJECT_SETTINGS)
        assert project.id is not None
        _try_views(client, int(project.id))
        return int(project.id)

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
