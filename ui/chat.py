"""The Chat tab: streamed, cited answers with thumbs up/down and an optional comment.

Per-browser-session state (the exchanges shown and their ids) lives in gr.State,
so concurrent users each keep their own history. After each answer it is saved on
the server as one of the browser's conversations (ui/conversations.py), listed beside
the chat: a reload, or a restart of the app, brings the open one back with its thumbs
still working, and any earlier one opens with a click. Each browser tab has its own
open conversation (its id in sessionStorage); a tab the browser has not seen, such as
the browser opened again, continues the one written last.

Every answer is logged when it is given; a thumb is committed to the local log
before the click returns, and Label Studio delivery happens later in the
background (feedback.sync).
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import gradio as gr

from feedback.records import USER_PROBLEMS
from qa.chain import AnswerError, QuestionError, validate_question
from qa.llm import uses_local_model
from ui.accounts import signed_in, user_key
from ui.browser import browser_secret
from ui.context import AppContext
from ui.conversations import BROWSER_ID, EMPTY_CONVERSATION, ConversationStore, kept_tabs
from ui.render import (
    CLOSEST_SUMMARY,
    escape_html,
    helped_markdown,
    literal_markdown,
    precedent_markdown,
    quotes_markdown,
    readable_time,
    renumber_citations,
    safe_markdown,
    sources_markdown,
    typed_text,
)

log = logging.getLogger(__name__)


def header_markdown(ctx: AppContext) -> str:
    docs = ctx.docs
    where = docs.repo.rstrip("/").rsplit("/", 1)[-1] if docs.repo else "nothing yet"
    commit = f" @ `{docs.commit[:10]}`" if docs.commit else ""
    when = f", ingested {readable_time(docs.updated_at)}" if docs.updated_at else ""
    chunks = f" ({docs.chunks:,} chunks{when})" if docs.chunks else ""
    model = safe_markdown(ctx.model_label)
    served, configured = ctx.served_model, ctx.settings.openai_model
    if served and not uses_local_model(ctx.settings) and not served.startswith(configured):
        model += f" (the server answers as {safe_markdown(served)})"  # gpt-4.1-mini-2025-04-14 is itself
    lines = [
        "## Ask the docs",
        f"**Model:** {model} · **Docs:** {safe_markdown(where)}{commit}{chunks}",
    ]
    return "\n\n".join(lines)


def empty_markdown(ctx: AppContext) -> str:
    if ctx.problem:
        return f"### The docs index can't be used\n\n{safe_markdown(ctx.problem)}"
    return (
        "### Nothing is ingested yet\n\n"
        "Run `.venv/bin/python ingest.py` (the Label Studio docs by default; `--repo URL_OR_PATH` for your own "
        "docs repo), or `make run`, which does it for you. Then reload this page."
    )


# Under the chat after a thumb: true whether Label Studio is up, down or not set up (ratings wait
# in the outbox, and the Review tab shows them too).
RATED_LINE = "<small>Thanks! Your rating is saved and will reach the people who review answers.</small>"

# Under an answer the model was stopped in (LLM_MAX_TOKENS / LOCAL_LLM_MAX_TOKENS): it ends mid-word.
CUT_SHORT_NOTE = "<small><i>(The answer was cut short: it reached its length limit.)</i></small>"
ERROR_MARK = "⚠️"  # starts the message `respond` shows instead of an answer when answering fails
# Ends an answer its reader stopped: not logged, so it has no thumbs' id.
STOPPED_NOTE = (
    "<small><i>(Stopped. An answer stopped before its end is not saved or rated: ↻ asks again.)</i></small>"
)
# Between a mid-answer error and the words written before it (`failed_message`).
PARTIAL_NOTE = (
    "<small><i>What was written before it failed (not saved, so it can't be rated: ↻ asks again):</i></small>"
)
WAITING = "…"  # the answer's place until its first words arrive
# Under the question box while what was sent (Enter or Ask, ↻, ↶) waits for the answer being written.
STILL_ANSWERING = (
    "An answer is still being written: your question will be asked as soon as it is finished or stopped."
)
RETRY_WAITS = "An answer is still being written: ↻ asks again as soon as it is finished or stopped."
UNDO_WAITS = (
    "An answer is still being written: ↶ takes its question back as soon as it is finished or stopped."
)
# ↶ with a draft in the box: the draft stays, and the question taken back is shown, not lost.
DRAFT_KEPT = "Your draft stays in the box. The question taken back was: “{}”"
# Runs in the browser when one of the page's questions is asked (`asked` is "<n>\n<question>"):
# the box is emptied only if it still holds that question, so a draft typed while it waited stays.
EMPTY_IF_ASKED_JS = """(asked, box) => {
  const question = (asked ?? "").slice((asked ?? "").indexOf("\\n") + 1);
  return (box ?? "") === question ? "" : box;
}"""
# The chat's label and toolbar (trash, copy) float over its top edge: the messages scroll in the
# space below them, so the toolbar never covers the end of a message.
# `#asked` is the page's, not shown (Gradio 6.31 shows a `visible="hidden"` box again on an update).
CHAT_CSS = (
    "#chatbot .bubble-wrap { margin-top: 30px; height: calc(100% - 30px); padding-top: 4px; }\n"
    "#asked, #chat-style, #open-conversation { display: none !important; }\n"
    # the list of conversations: one under the other, two lines each, scrolling past ~10 of them
    "#conversations .wrap { flex-direction: column; flex-wrap: nowrap; max-height: 470px; overflow-y: auto; }\n"
    "#conversations label { width: 100%; }\n"
    "#conversations label span { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;"
    " overflow: hidden; }"
)


class Turns:
    """One answer at a time per page (browser session); what the page sends meanwhile waits for it.

    An answer, ↻ or ↶ holds the page's turn until it is done. A request sent meanwhile waits
    for the next turn, and a later one takes its place (Enter pressed twice asks once). A turn
    that waited continues the conversation as the turn before it left it: the page's copy it
    was sent with dates from before that answer.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: dict[str, threading.Event] = {}  # session -> the Stop of the turn being taken
        self._next: dict[str, object] = {}  # session -> the request waiting for the next turn
        self._left: dict[str, tuple] = {}  # session -> the conversation the turn before left

    def busy(self, session: str) -> bool:
        with self._changed:
            return session in self._held

    def waiting(self, session: str) -> bool:
        with self._changed:
            return session in self._next

    def stop(self, session: str) -> None:
        """Stop the answer being written, if any: its model stops at its next word."""
        with self._changed:
            stop = self._held.get(session)
        if stop is not None:
            stop.set()

    def enter(self, session: str, ticket: object) -> threading.Event | None:
        """The turn at once (its Stop); None while another is taken: `ticket` is then next (`wait`)."""
        with self._changed:
            if session not in self._held:
                self._held[session] = stop = threading.Event()
                return stop
            self._next[session] = ticket  # a request queued before gives way (`wait` returns None)
            self._changed.notify_all()
            return None

    def wait(self, session: str, ticket: object) -> tuple[threading.Event, tuple | None] | None:
        """Once the turn being taken ends: the next one's Stop, and the conversation it continues;
        None when a request sent later took this one's place."""
        with self._changed:
            while True:
                if self._next.get(session) is not ticket:
                    return None
                if session not in self._held:
                    del self._next[session]
                    self._held[session] = stop = threading.Event()
                    return stop, self._left.pop(session, None)
                self._changed.wait()

    def withdraw(self, session: str, ticket: object) -> None:
        """`ticket` waits no more (its page went away)."""
        with self._changed:
            if self._next.get(session) is ticket:
                del self._next[session]
            self._changed.notify_all()

    def done(self, session: str, stop: threading.Event, left: tuple) -> None:
        """End the turn `stop` belongs to, leaving the conversation as `left` (history, turns, ids)."""
        with self._changed:
            if self._held.get(session) is stop:
                del self._held[session]
                if session in self._next:
                    self._left[session] = left
            self._changed.notify_all()


def _message_text(value: object) -> str:
    """A chat message's text, whether Gradio gives it as a string or as a list of parts."""
    parts = value if isinstance(value, list) else [value]
    return "".join(p.get("value", p.get("text", "")) if isinstance(p, dict) else str(p) for p in parts)


def failed_message(error: str, written: str) -> str:
    """What answering failed with, and the words the model had written before it did.

    A server that fails mid-answer (a dropped connection, a timeout between words) leaves part of
    an answer already on screen: it stays, under the error, so what was read is not taken away.
    The message starts with ERROR_MARK either way: it is not logged, so it can't be rated.
    """
    message = f"{ERROR_MARK} {safe_markdown(error)}"
    if written.strip():
        message += f"\n\n{PARTIAL_NOTE}\n\n{safe_markdown(written)}"
    return message


def _is_error(value: object) -> bool:
    """Whether a chat message is one of `respond`'s error messages, not an answer."""
    return _message_text(value).lstrip().startswith(ERROR_MARK)


def _is_stopped(value: object) -> bool:
    """Whether a chat message is an answer its reader stopped."""
    return _message_text(value).rstrip().endswith(STOPPED_NOTE)


def _clicked(data: gr.LikeData) -> Any:
    """The index of the message a thumb was clicked under (Gradio gives [row, column] or a number)."""
    return data.index[0] if isinstance(data.index, (list, tuple)) else data.index


def _conversation(history: list | None, turns: list | None, ids: dict | None) -> tuple[list, list, dict]:
    """A page's chat, follow-ups and thumbs' ids, empty where the page sent nothing yet."""
    return history or [], turns or [], ids or {}


def last_question(history: list[dict[str, Any]], turns: list, ids: dict) -> tuple[str, list, list, dict]:
    """The chat's last question as typed, and the chat, follow-ups and thumbs' ids before it.

    For "retry": the question is asked again as if typed anew. Its earlier answer stays in
    the log, with any rating it got; only this page forgets it.
    """
    asked = max((i for i, m in enumerate(history) if m.get("role") == "user"), default=None)
    if asked is None:
        return "", history, turns, ids
    ids = {k: v for k, v in ids.items() if int(k) < asked}
    kept = set(ids.values())
    turns = [t for t in turns if t.get("exchange_id") in kept]
    return typed_text(_message_text(history[asked]["content"])), history[:asked], turns, ids


# The thumb Gradio's Chatbot shows lit under an answer, by the log's rating.
THUMB_SHOWN = {"good": "Like", "bad": "Dislike"}


def _answer_slots(history: list[dict[str, Any]]) -> list[int]:
    """The index of each answer bubble's last message, in order: Chatbot's `feedback_value` has one
    entry per bubble, and consecutive assistant messages share one."""
    slots: list[int] = []
    for i, message in enumerate(history):
        if message.get("role") != "assistant":
            continue
        if slots and slots[-1] == i - 1:
            slots[-1] = i
        else:
            slots.append(i)
    return slots


def thumbs_lit(history: list[dict[str, Any]], ids: dict, rating_of: Callable[[str], str | None]) -> list:
    """Chatbot's `feedback_value` for `history`: each answer's thumb as the log has it, else None.

    Given with a conversation put back on the page (a reload, ↻, ↶), so the thumbs a user gave
    are shown lit again, and a thumb lit under an answer no longer there goes out.
    """
    lit = []
    for slot in _answer_slots(history):
        exchange_id = ids.get(str(slot))
        lit.append(THUMB_SHOWN.get(rating_of(exchange_id) or "") if exchange_id else None)
    return lit


def _history_for_chain(turns: list[dict[str, str]]) -> list[tuple[str, str]]:
    history: list[tuple[str, str]] = []
    for turn in turns:
        history += [("user", turn["question"]), ("assistant", turn["answer"])]
    return history


# Offered under an empty chat when the Label Studio docs are ingested (CHAT_EXAMPLES=auto): each
# finds its page first here, and the bundled local model answers it from that page.
LABEL_STUDIO_EXAMPLES = (
    "How do I start Label Studio without opening a browser tab?",
    "How do I connect an S3 bucket as a source storage?",
    "How do I export annotations in COCO format?",
    "How do I add a machine learning backend for pre-annotations?",
)


LABEL_STUDIO_REPO = re.compile(r"github\.com[:/]HumanSignal/label-studio(?:\.git)?/?$", re.IGNORECASE)
# ... or ingested from a clone, a fork or a bundle of it: the pages the examples are answered from
LABEL_STUDIO_PAGES = frozenset(
    f"docs/source/guide/{page}.md" for page in ("start", "storage", "export", "ml", "labeling")
)


def label_studio_docs(ctx: AppContext) -> bool:
    """Whether the docs ingested are Label Studio's (its repo, or a clone, fork or bundle of it)."""
    return bool(LABEL_STUDIO_REPO.search(ctx.docs.repo or "")) or ctx.docs.files.keys() >= LABEL_STUDIO_PAGES


def question_placeholder(ctx: AppContext) -> str:
    """The question box's hint: an example about the docs ingested, not Label Studio's on any repo."""
    if label_studio_docs(ctx):
        return "e.g. How do I stop Label Studio from opening a browser tab on start?"
    return "Ask a question about the docs (Enter sends it)"


def chat_examples(ctx: AppContext) -> list[dict[str, str]]:
    """The example questions for the chat's empty state (CHAT_EXAMPLES), as gr.Chatbot takes them."""
    setting = ctx.settings.chat_examples.strip()
    if setting.lower() == "auto":
        questions = list(LABEL_STUDIO_EXAMPLES) if label_studio_docs(ctx) else []
    else:
        questions = [q.strip() for q in setting.split("|") if q.strip()]
    return [{"text": q} for q in questions]


# Where an earlier version kept each tab's conversation in the browser (gr.BrowserState): read
# once when that browser comes back, moved to the server's list (ui/conversations.py), emptied.
STORAGE_KEY = "docs-qa-conversation"
# Runs in the browser before the page-load handler: the browser's own id (made once, kept in
# localStorage: it names the browser's conversations on the server), the conversation this tab
# has open (sessionStorage: survives a reload of the tab, not shared with other tabs), and the tab
# id under which an earlier version kept its conversation in the browser.
LOAD_JS = """(kept, browser, open, tab) => {
  const made = () => globalThis.crypto?.randomUUID?.() ?? String(Date.now()) + String(Math.random()).slice(2);
  let id = "", opened = "", keptTab = "";
  try {
    id = localStorage.getItem("docs-qa-browser") ?? "";
    if (!id) { id = made(); localStorage.setItem("docs-qa-browser", id); }
    opened = sessionStorage.getItem("docs-qa-open") ?? "";
    keptTab = sessionStorage.getItem("docs-qa-tab") ?? "";
  } catch (e) { id = ""; }  // storage switched off: the conversation lasts as long as the page
  return [kept, id, opened, keptTab];
}"""
# Runs in the browser when the page opens another conversation (or a new one): a reload shows it.
REMEMBER_OPEN_JS = (
    """(open) => { try { sessionStorage.setItem("docs-qa-open", open ?? ""); } catch (e) {} return []; }"""
)
# Under the header for a signed-in person (`python app.py users add`): Gradio's sign-out route.
SIGNED_IN = " · Signed in as **{}** ([sign out](logout))"
# The open conversation of a tab after "New conversation" (or the trash icon), until its first answer
# is saved: a reload keeps it empty, where a tab with none open shows the one written last.
NEW_CONVERSATION = "new"
STILL_WRITING = "An answer is still being written: stop it (Stop) or let it finish, then {}."
# When another tab continued the conversation open here: this tab's answers are kept apart, not lost.
FORKED = (
    "This conversation was continued in another tab meanwhile: this tab's is now a conversation "
    "of its own in the list, so neither is lost."
)


def conversation_choices(store: ConversationStore, browser: str) -> list[tuple[str, str]]:
    """The list beside the chat: (title, id) of the browser's conversations, written last first."""
    return [(c.title, c.id) for c in store.list(browser)]


def build_chat_tab(ctx: AppContext, blocks: gr.Blocks) -> None:
    """Render the chat inside the current Blocks/Tab context.

    The header and the "nothing ingested" notice are worked out on every page load
    (`AppContext.refresh`): after `python ingest.py`, reloading the page is enough.
    """
    settings, feedback_log = ctx.settings, ctx.log

    header = gr.Markdown(header_markdown(ctx), elem_id="chat-header")
    notice = gr.Markdown(
        "" if ctx.chain is not None else empty_markdown(ctx), visible=ctx.chain is None, elem_id="chat-empty"
    )
    turns = gr.State([])  # [{"question", "answer", "exchange_id"}], for follow-ups
    ids = gr.State({})  # chatbot message index -> exchange id, for the thumbs
    rated = gr.State("")  # exchange id waiting for an optional comment
    # an earlier version's copy of the conversation in the browser, moved to the server on load
    saved = gr.BrowserState({"tabs": {}}, storage_key=STORAGE_KEY, secret=browser_secret(settings.data_dir))
    tab_box = gr.Textbox(visible=False)  # the tab id it was kept under (LOAD_JS reads it)
    browser_box = gr.Textbox(visible=False)  # the browser's own id (LOAD_JS)
    browser = gr.State("")
    version = gr.State(0)  # the version of the open conversation this page continues
    store = ctx.conversations
    pending: dict[tuple[str, int], bool] = {}  # (session, message) -> a thumb clicked while it streamed
    # session -> exchange id whose pending thumb `respond` has just saved: `offer_comment` then
    # shows the comment box and the saved line, as a thumb on a finished answer does.
    rated_late: dict[str, str] = {}
    taking = Turns()  # each page's answers, ↻ and ↶, one at a time
    numbered = itertools.count()  # makes each question's `asked` value new, for its change event

    def rating_of(exchange_id: str) -> str | None:
        exchange = feedback_log.get(exchange_id)
        return exchange.user_rating if exchange else None

    def with_thumbs(history: list[dict[str, Any]], ids_: dict, **more: Any) -> dict:
        """The chat put back on the page, with the thumbs the log has for it lit."""
        return gr.update(value=history, feedback_value=thumbs_lit(history, ids_, rating_of), **more)

    with gr.Row(visible=ctx.chain is not None, equal_height=False) as chat_area:
        # The browser's conversations, written last first: one click opens one (ui/conversations.py).
        with gr.Column(scale=1, min_width=200, elem_id="conversation-list"):
            clear = gr.Button("New conversation", size="sm", elem_id="new-conversation")
            past = gr.Radio([], label="Your conversations", visible=False, elem_id="conversations")
            # The open conversation's id (REMEMBER_OPEN_JS keeps it for a reload). Not shown (CHAT_CSS).
            open_box = gr.Textbox(elem_id="open-conversation", container=False, show_label=False)
        with gr.Column(scale=4):
            chatbot = gr.Chatbot(
                label="Conversation",
                elem_id="chatbot",
                height=520,
                allow_tags=False,
                sanitize_html=True,
                feedback_options=("Like", "Dislike"),
                placeholder="Ask a question about the docs. Answers cite their sources; rate them with the thumbs under each answer.",
                examples=chat_examples(ctx) or None,
                # no "share" (to Hugging Face Spaces, which this app is not on): it did nothing visible
                buttons=["copy", "copy_all"],
            )
            gr.HTML(f"<style>{CHAT_CSS}</style>", elem_id="chat-style", padding=False)
            with gr.Row():
                question = gr.Textbox(
                    label="Your question",
                    placeholder=question_placeholder(ctx),
                    lines=1,  # Enter sends; long questions still wrap
                    max_lines=8,
                    scale=8,
                    elem_id="question",
                )
                ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                # In the Ask button's place while an answer is written (the local model takes a while).
                stop_button = gr.Button("Stop", variant="stop", scale=1, visible=False, elem_id="stop")
            # What was sent while an answer is written waits for it: this says so (`STILL_ANSWERING`).
            note = gr.Markdown("", visible=False, elem_id="waiting-note")
            # The question the page has just asked, "<n>\n<question>": the browser empties the box if it
            # still holds it (EMPTY_IF_ASKED_JS). In the page, not shown (CHAT_CSS).
            asked = gr.Textbox(elem_id="asked", container=False, show_label=False)
            with gr.Column(visible=False, elem_id="comment-row") as comment_row:
                # After a thumbs down: what was wrong, in the user's words (pre-ticked for the reviewer).
                reasons = gr.CheckboxGroup(
                    [(label, key) for key, label in USER_PROBLEMS.items()],
                    label="What was wrong? (optional)",
                    visible=False,
                    elem_id="thumb-problems",
                )
                with gr.Row():
                    comment = gr.Textbox(
                        label="Thanks! Anything to add? (optional: what was wrong or missing)",
                        lines=2,
                        scale=8,
                        elem_id="comment",
                    )
                    send_comment = gr.Button("Send comment", scale=1, elem_id="send-comment")

    def listed(browser_id: str, open_id: str) -> dict:
        """The list of conversations, with the open one ticked (hidden while there are none)."""
        choices = conversation_choices(store, browser_id)
        ticked = open_id if any(value == open_id for _, value in choices) else None
        return gr.update(choices=choices, value=ticked, visible=bool(choices))

    def on_load(kept: dict | None, browser_id: str, open_id: str, tab_id: str, request: gr.Request):
        """The page as of now: header, notice and examples for the docs ingested now (an ingest
        may have changed them), the browser's conversations, and the one this tab had open (a tab
        opened anew: the one written last), as it was when its last answer finished. A copy an
        earlier version kept in the browser is moved to the list first."""
        ctx.refresh()
        ready = ctx.chain is not None
        account = signed_in(request)
        if account:  # their conversations follow them from browser to browser (ui/accounts.py)
            browser_id = user_key(account)
        moved = None  # the earlier copy's conversations: {tab id: id on the list}
        if kept_tabs(kept) and BROWSER_ID.fullmatch(browser_id or ""):
            try:
                moved = store.import_kept(browser_id, kept)
            except Exception:  # the copy stays in the browser, to be moved on the next load
                log.exception("cannot move the conversations kept in a browser to %s", store.path)
        mine = open_id or (moved or {}).get(tab_id or "", "")
        shown = None if mine == NEW_CONVERSATION else store.get(browser_id, mine) or store.latest(browser_id)
        state = (shown.state if shown else None) or EMPTY_CONVERSATION
        open_id = shown.id if shown else NEW_CONVERSATION
        return (
            header_markdown(ctx) + (SIGNED_IN.format(safe_markdown(account)) if account else ""),
            gr.update(value="" if ready else empty_markdown(ctx), visible=not ready),
            gr.update(visible=ready),
            with_thumbs(state["history"], state["ids"], examples=chat_examples(ctx) or None),
            state["turns"],
            state["ids"],
            browser_id or "",
            open_id,
            shown.version if shown else 0,
            listed(browser_id, open_id),
            {"tabs": {}} if moved is not None else gr.skip(),  # the earlier copy, once moved
            gr.update(placeholder=question_placeholder(ctx)),
        )

    blocks.load(
        on_load,
        [saved, browser_box, open_box, tab_box],
        [header, notice, chat_area, chatbot, turns, ids, browser, open_box, version, past, saved, question],
        js=LOAD_JS,
        api_visibility="private",
    )
    open_box.change(None, open_box, None, js=REMEMBER_OPEN_JS, api_visibility="private")

    # Under the chat, only what a rating means to the person who gave it. Delivery to Label
    # Studio (down, refusing its key, not configured) is the operator's business: the Review
    # tab's summary and the server log say it, with the fix; no user of the chat can act on it.
    status = gr.Markdown("", elem_id="feedback-status")

    def session_of(request: gr.Request | None) -> str:
        return request.session_hash if request else ""

    def answer_stream(
        message: str,
        history: list[dict[str, Any]],
        turns_: list,
        ids_: dict,
        session: str,
        stop: threading.Event,
    ):
        """The answer to `message`, streamed as (box, history, turns, ids): the box is `message` when it
        is refused (what was typed is kept), "" once it is asked, then None (left alone: the next
        question, typed while this answer streams, must not be wiped by every piece)."""
        try:
            text = validate_question(message, settings)
        except QuestionError as exc:
            gr.Warning(str(exc))
            yield message, history, turns_, ids_  # keep what was typed
            return
        ctx.refresh()
        ctx.refresh_precedents()  # the reviewers' verdicts given since the last question
        chain = ctx.chain
        if chain is None:
            # ctx.problem names a store that can't be used (built with another embedding model, say)
            gr.Warning(
                ctx.problem or "Nothing is ingested yet: run `.venv/bin/python ingest.py`, then ask again."
            )
            yield message, history, turns_, ids_
            return
        # What was typed, shown as typed: a user's `![x](http://host/x.png)` loads nothing.
        history = [*history, {"role": "user", "content": literal_markdown(text)}]
        history.append({"role": "assistant", "content": WAITING})
        yield "", history, turns_, ids_
        shown = held = ""
        try:
            for event in chain.stream(text, _history_for_chain(turns_), stop=stop):
                if event.answer is None:
                    # Each piece is shown when the next event arrives: the "not covered" reply
                    # (which quotes the question) comes as one piece followed at once by the
                    # answer saying it abstained, so it is never rendered as Markdown.
                    if held:
                        shown += held
                        history[-1] = {"role": "assistant", "content": safe_markdown(shown)}
                        yield None, history, turns_, ids_
                    held = event.text
                    continue
                answer = event.answer
                listed = answer.cited if not answer.abstained else []
                # numbered 1, 2, 3… as listed, in the answer's [n] too (the passages' ranks left gaps)
                written, listed = renumber_citations(answer.text, listed)
                _, closest = renumber_citations("", answer.closest)
                heading = "Sources" if answer.citations_found else "Closest sources (not cited by the model)"
                # The abstain reply is not the model's: it is a template around the searched
                # question, which the user wrote, so all of it is shown as literal text.
                shown_text = literal_markdown(answer.text) if answer.abstained else safe_markdown(written)
                if answer.cut_short:  # the model hit its token cap mid-sentence: say so, not just stop
                    shown_text += f"\n\n{CUT_SHORT_NOTE}"
                body = (
                    shown_text
                    + precedent_markdown(answer.precedent)
                    + helped_markdown(answer.helped_by, answer.lowered_by)
                    # the local model's answers hold fewer of the facts than the lines they cite
                    + sources_markdown(listed, heading=heading, folded=not ctx.local_model)
                    + quotes_markdown(closest, summary=CLOSEST_SUMMARY, named=True)
                )
                history[-1] = {"role": "assistant", "content": body}
                exchange_id = feedback_log.record_exchange(
                    question=text,
                    answer=answer.text,
                    session=session,
                    standalone_question=answer.standalone_question,
                    retrieved=[s.as_dict() for s in answer.sources],
                    cited=[s.as_dict() for s in answer.cited],
                    prompt_version=answer.prompt_version,
                    model=answer.model,
                    docs_commit=ctx.docs.commit,
                    latency_ms=answer.total_ms,
                    reused_from=answer.precedent.judged.id if answer.precedent else None,
                    reused_verdict=answer.precedent.judged.verdict if answer.precedent else None,
                    helped_by=[p.judged.id for p in answer.helped_by],
                    lowered_by=[p.judged.id for p in answer.lowered_by],
                )
                ctx.pre_rate(exchange_id, answer)  # for reviewers, in the background
                if not answer.abstained:  # no model wrote an abstaining reply
                    ctx.served_model = answer.model or ctx.served_model
                ids_ = {**ids_, str(len(history) - 1): exchange_id}
                liked = pending.pop((session, len(history) - 1), None)
                if liked is not None:  # thumbed while it streamed: the rating counts now
                    feedback_log.rate(exchange_id, "good" if liked else "bad")
                    rated_late[session] = exchange_id
                turns_ = [*turns_, {"question": text, "answer": answer.text, "exchange_id": exchange_id}]
                yield None, history, turns_, ids_
        except AnswerError as exc:
            history[-1] = {"role": "assistant", "content": failed_message(str(exc), shown + held)}
            yield None, history, turns_, ids_
        except Exception:  # never a traceback on the page
            log.exception("answering failed")
            said = "Something went wrong while answering; the server log has the details."
            history[-1] = {"role": "assistant", "content": failed_message(said, shown + held)}
            yield None, history, turns_, ids_
        finally:
            pending.pop((session, len(history) - 1), None)  # an error message is not rated
        if stop.is_set() and str(len(history) - 1) not in ids_ and not _is_error(history[-1]["content"]):
            # Stopped: what was written, marked so.
            kept = safe_markdown(shown + held)
            history[-1] = {"role": "assistant", "content": f"{kept}\n\n{STOPPED_NOTE}".lstrip()}
            yield None, history, turns_, ids_

    # --- the page's turns: Enter or Ask, an example, ↻ and ↶ -----------------------------------
    # Their functions yield {component: value} dicts: only what they name changes on the page.

    def idle_buttons() -> dict:  # Ask back in the Stop button's place, no note
        return {
            ask: gr.update(visible=True),
            stop_button: gr.update(visible=False),
            note: gr.update(visible=False),
        }

    def wait_for_turn(session: str, waiting_note: str):
        """This page's turn: (its Stop, the conversation to continue or None for the page's own), or
        None when a request sent after this one took its place. While an answer is still written,
        `waiting_note` shows under the box until it is finished or stopped."""
        ticket = object()
        stop = taking.enter(session, ticket)
        if stop is not None:
            return stop, None
        turn = None
        try:
            yield {note: gr.update(value=waiting_note, visible=True)}
            turn = taking.wait(session, ticket)
        finally:
            if turn is None:  # the page went away while this waited: nothing waits any more
                taking.withdraw(session, ticket)
        return turn

    def answer_turn(session: str, stop: threading.Event, message: str, conversation: tuple, *, box: bool):
        """The page's answer to `message` in its turn; the turn ends with it.

        `box`: the question came from the box, which the browser empties once it is asked if it
        still holds it (a question that waited may have a draft typed after it there).
        """
        left = conversation
        try:
            for typed, *left in answer_stream(message, *conversation, session, stop):
                history, turns_, ids_ = left
                shown: dict = {chatbot: history, turns: turns_, ids: ids_}
                if typed == "":  # asked: the answer is being written, under the answers as the log has them
                    shown |= {
                        chatbot: with_thumbs(history, ids_),
                        note: gr.update(visible=False),
                        ask: gr.update(visible=False),
                        stop_button: gr.update(value="Stop", interactive=True, visible=True),
                    }
                    if box:
                        shown[asked] = f"{next(numbered)}\n{message}"
                yield shown
            if not taking.waiting(session):  # else the next turn keeps Stop up
                yield idle_buttons()
        finally:
            taking.done(session, stop, tuple(left))

    def ask_in_turn(message: str, conversation: tuple, request: gr.Request | None, *, box: bool):
        """`message` asked in this page's turn: at once, or once the answer being written is done."""
        session = session_of(request)
        try:
            validate_question(message, settings)
        except QuestionError as exc:  # said at once, not after the answer being written
            gr.Warning(str(exc))
            if not taking.busy(session):
                yield idle_buttons()
            return
        turn = yield from wait_for_turn(session, STILL_ANSWERING)
        if turn is not None:
            stop, left = turn
            yield from answer_turn(session, stop, message, left or conversation, box=box)

    def respond(message: str, history: list[dict[str, Any]], turns_: list, ids_: dict, request: gr.Request):
        """Enter or Ask: the question in the box is asked (after the answer being written, if any)."""
        yield from ask_in_turn(message, _conversation(history, turns_, ids_), request, box=True)

    def ask_example(history: list, turns_: list, ids_: dict, data: gr.SelectData, request: gr.Request):
        """An example question clicked under the empty chat: asked as if typed, the box left alone."""
        value = data.value if isinstance(data.value, dict) else {}
        yield from ask_in_turn(
            str(value.get("text", "")), _conversation(history, turns_, ids_), request, box=False
        )

    def retry(history: list, turns_: list, ids_: dict, request: gr.Request):
        """↻ under the last answer: its question asked again as it was typed, in its place.

        The box is left alone (it may hold a draft). The earlier answer stays in the log, with any
        rating it got; only this page forgets it.
        """
        session = session_of(request)
        turn = yield from wait_for_turn(session, RETRY_WAITS)
        if turn is None:
            return
        stop, left = turn
        text, *conversation = last_question(*(left or _conversation(history, turns_, ids_)))
        yield from answer_turn(session, stop, text, tuple(conversation), box=False)

    def undo(draft: str, history: list, turns_: list, ids_: dict, request: gr.Request):
        """↶ under the last answer: its question goes back in the box, to be edited and asked anew.

        Gradio's edit-in-place would show the escapes `literal_markdown` put in the bubble;
        this gives the question back as typed. The answer leaves the page, not the log. A draft
        in the box stays: the question taken back is then shown in a toast instead.
        """
        session = session_of(request)
        turn = yield from wait_for_turn(session, UNDO_WAITS)
        if turn is None:
            return
        stop, left = turn
        conversation = left or _conversation(history, turns_, ids_)
        try:
            text, *conversation = last_question(*conversation)
            history, turns_, ids_ = conversation
            shown = {
                chatbot: with_thumbs(history, ids_),
                turns: turns_,
                ids: ids_,
                comment_row: gr.update(visible=False),
            }
            shown[status] = ""  # the undone answer's comment box and rating line go with it
            if not (draft or "").strip():
                shown[question] = text
            elif text.strip() and text.strip() != draft.strip():
                gr.Info(DRAFT_KEPT.format(escape_html(text)))
            yield shown | ({} if taking.waiting(session) else idle_buttons())
        finally:
            taking.done(session, stop, tuple(conversation))

    def on_like(ids_: dict, data: gr.LikeData, request: gr.Request):
        index = _clicked(data)
        exchange_id = ids_.get(str(index))
        if not exchange_id:
            if _is_error(data.value):
                gr.Info("Only answers can be rated (this one was an error message).")
            elif _is_stopped(data.value):
                gr.Info(
                    "A stopped answer is not saved, so it cannot be rated: ask again (↻ under it) for a whole one."
                )
            elif data.liked in (True, False):  # still streaming: rated as soon as it is complete
                pending[(session_of(request), int(index))] = bool(data.liked)
                gr.Info("Thanks! Your rating is saved as soon as the answer is complete.")
            return gr.update(visible=False), "", gr.update(), gr.update()
        if data.liked not in (True, False):
            # A lit thumb clicked (lit again by `put_out`: the rating stands): its comment box again,
            # to add or change what was said, e.g. after a reload, where the box is not on the page.
            exchange = feedback_log.get(exchange_id)
            if exchange is None or exchange.user_rating is None:
                return gr.update(), exchange_id, gr.update(), gr.update()
            disliked = exchange.user_rating == "bad"
            return (
                gr.update(visible=True),
                exchange_id,
                RATED_LINE,
                reasons_for(disliked, exchange.user_problems),
            )
        feedback_log.rate(exchange_id, "good" if data.liked else "bad")
        return gr.update(visible=True), exchange_id, RATED_LINE, reasons_for(not data.liked)

    def said_before(ids_: dict, data: gr.LikeData):
        """The comment box holds what the user said about this answer before (to change it)."""
        index = _clicked(data)
        exchange = feedback_log.get(ids_.get(str(index)) or "")
        return exchange.user_comment if exchange is not None else gr.skip()

    def offer_comment(request: gr.Request):
        """After an answer: the comment box and the saved line for a thumb given while it streamed.

        The answer's own function cannot show them without adding outputs to the public /ask
        API, so this step runs once it is done, like `on_like` does for a thumb on a finished answer.
        """
        exchange_id = rated_late.pop(session_of(request), None)
        if not exchange_id:
            return gr.update(), gr.update(), gr.update(), gr.update()
        exchange = feedback_log.get(exchange_id)
        disliked = exchange is not None and exchange.user_rating == "bad"
        return gr.update(visible=True), exchange_id, RATED_LINE, reasons_for(disliked)

    def reasons_for(disliked: bool, ticked: tuple[str, ...] = ()) -> dict:
        """The "what was wrong" boxes: offered after a thumbs down only, ticked as the user left them."""
        return gr.update(value=list(ticked) if disliked else [], visible=disliked)

    def on_comment(text: str, problems: list[str] | None, exchange_id: str):
        if exchange_id and (text.strip() or problems):
            # nothing ticked keeps what was ticked before; a comment alone is a comment
            feedback_log.set_comment(exchange_id, text.strip() or None, problems or None)
            gr.Info("Thank you! Saved with your rating.")
        return gr.update(visible=False), "", "", gr.update(value=[])

    inputs = [question, chatbot, turns, ids]
    outputs = [question, chatbot, turns, ids]
    late = [comment_row, rated, status, reasons]
    # what the page's turns may change: the box only through `asked`, so a draft typed meanwhile stays
    page = [asked, chatbot, turns, ids, note, ask, stop_button]
    kept_in, kept_out = [chatbot, turns, ids, browser, open_box, version], [open_box, version, past]

    def keep(history: list, turns_: list, ids_: dict, browser_id: str, open_id: str, seen: int):
        """After an answer (or ↶): the conversation saved on the list, continuing version `seen`.

        When another tab continued it meanwhile, this tab's becomes a conversation of its own,
        so neither tab's answers are lost. A save that fails leaves the page as it is (logged).
        """
        history, turns_, ids_ = _conversation(history, turns_, ids_)
        try:
            kept = store.save(browser_id, open_id, {"history": history, "turns": turns_, "ids": ids_}, seen)
        except Exception:
            log.exception("cannot save a conversation in %s", store.path)
            return gr.skip(), gr.skip(), gr.skip()
        if kept is not None and open_id and kept.id != open_id and seen:
            gr.Info(FORKED)
        now_open = kept.id if kept else NEW_CONVERSATION
        return now_open, kept.version if kept else 0, listed(browser_id, now_open)

    def request_stop(request: gr.Request):
        """Stop: the model stops at its next token; the words written so far stay, marked (not logged).

        Not Gradio's `cancels`: a cancelled stream can still deliver a last update over the
        stopped one, the page then missed the next events' messages (Gradio 6.31), and the
        model went on writing the whole answer for no one.
        """
        taking.stop(session_of(request))
        return gr.update(value="Stopping…", interactive=False)

    def answering():  # the Stop button in the Ask button's place at once, before the answer starts
        return gr.update(visible=False), gr.update(value="Stop", interactive=True, visible=True)

    # "multiple": Gradio's default ("once") dropped an Enter pressed while the answer it had sent was
    # still written, without a word; `Turns` makes it wait for that answer instead. The page's turns
    # show their progress on the chat only (the box, an output of theirs, was framed in orange).
    # `answering` is registered first: a trigger's listeners start in the order they were added.
    turn_events = dict(trigger_mode="multiple", concurrency_limit=None, show_progress_on=chatbot)
    for trigger in (question.submit, ask.click, chatbot.example_select, chatbot.retry):
        trigger(
            answering,
            None,
            [ask, stop_button],
            queue=False,
            trigger_mode="multiple",
            api_visibility="private",
        )
    answers = [
        question.submit(respond, inputs, page, api_visibility="private", **turn_events),
        ask.click(respond, inputs, page, api_visibility="private", **turn_events),
        chatbot.example_select(
            ask_example, [chatbot, turns, ids], page, api_visibility="private", **turn_events
        ),
        chatbot.retry(retry, [chatbot, turns, ids], page, api_visibility="private", **turn_events),
    ]
    for answered in answers:
        answered.then(offer_comment, None, late, api_visibility="private")
        answered.then(keep, kept_in, kept_out, api_visibility="private")
    asked.change(None, [asked, question], question, js=EMPTY_IF_ASKED_JS, api_visibility="private")
    # Nothing is asked: the question waits in the box; its answer's comment box goes with it.
    chatbot.undo(
        undo,
        inputs,
        [question, chatbot, turns, ids, comment_row, status, note, ask, stop_button],
        api_visibility="private",
        **turn_events,
    ).then(keep, kept_in, kept_out, api_visibility="private")
    stop_button.click(request_stop, None, stop_button, queue=False, api_visibility="private")

    def ask_api(message: str, history: list, turns_: list, ids_: dict, request: gr.Request):
        """The public /ask endpoint: the answer, with the box's value always text ("" once asked).

        Its own hidden trigger: for the page, the answer leaves the box alone while it streams,
        which an API client would receive as a raw update. A client may ask several questions at
        once: there is no page whose answer they would overwrite.
        """
        stream = answer_stream(
            message, *_conversation(history, turns_, ids_), session_of(request), threading.Event()
        )
        for box, *rest in stream:
            yield (box if isinstance(box, str) else "", *rest)

    api_ask = gr.Button(visible=False)
    api_ask.click(ask_api, inputs, outputs, api_name="ask", concurrency_limit=None)
    chatbot.like(on_like, [ids], late, api_name="rate")
    chatbot.like(said_before, [ids], comment, api_visibility="private")

    put_back: dict[str, list] = {}  # session -> the thumbs `put_out` shows once the click's are on screen

    def put_out(history: list, ids_: dict, data: gr.LikeData, request: gr.Request):
        """Chatbot's thumbs as the log has them after a click it can't stand for on its own.

        A thumb clicked under an error or a stopped answer goes out again (`on_like` says why); a
        lit thumb clicked under a rated answer is lit again (the rating stands: its comment box
        is offered). Chatbot lights or puts out a thumb itself, and changes it on an update only
        when its `feedback_value` entry changes: so the entry is first set to what the click
        left on screen (nothing changes there), then, by `show_logged` once the page has that,
        to what the log has. Two updates of one event could reach the page in one frame: one
        change, to nothing.
        """
        index = _clicked(data)
        history, ids_ = history or [], ids_ or {}
        slots = _answer_slots(history)
        if index not in slots:
            return gr.skip()
        exchange_id = ids_.get(str(index))
        lit = thumbs_lit(history, ids_, rating_of)
        if exchange_id:
            if data.liked in (True, False) or lit[slots.index(index)] is None:
                return gr.skip()  # a rating given (`on_like`), or none to light again
            clicked = None  # a lit thumb clicked: out on screen; the log's stays
        elif data.liked not in (True, False) or not (_is_error(data.value) or _is_stopped(data.value)):
            return gr.skip()  # still streaming: the thumb counts once the answer is complete (`on_like`)
        else:
            clicked = "Like" if data.liked else "Dislike"
        shown = list(lit)
        shown[slots.index(index)] = clicked
        put_back[session_of(request)] = lit
        return gr.update(feedback_value=shown)

    def show_logged(request: gr.Request):
        """The thumbs as the log has them, after `put_out` (a separate event: a later frame)."""
        lit = put_back.pop(session_of(request), None)
        return gr.skip() if lit is None else gr.update(feedback_value=lit)

    chatbot.like(put_out, [chatbot, ids], chatbot, api_visibility="private").then(
        show_logged, None, chatbot, api_visibility="private"
    )
    said = [comment_row, comment, rated, reasons]
    send_comment.click(on_comment, [comment, reasons, rated], said, api_name="comment")
    comment.submit(on_comment, [comment, reasons, rated], said, api_visibility="private")

    def forget():  # follow-up history, thumbs' ids, an open comment box, the rating line
        return [], {}, gr.update(visible=False), ""

    reset = [turns, ids, comment_row, status]
    none_open = [open_box, version, past]

    def no_thumbs():  # none lit under the next conversation's answers
        return gr.update(value=[], feedback_value=[])

    def ticked(open_id: str) -> str | None:  # the list's tick: none for a new conversation
        return None if not open_id or open_id == NEW_CONVERSATION else open_id

    def busy(request: gr.Request | None) -> bool:
        session = session_of(request)
        return taking.busy(session) or taking.waiting(session)

    def start_new(open_id: str, request: gr.Request):
        """New conversation: an empty chat; the one open stays on the list (what is typed stays too)."""
        if busy(request):  # its answer would be written into the new one
            gr.Warning(STILL_WRITING.format("start a new one"))
            return (gr.skip(),) * 7 + (gr.update(value=ticked(open_id)),)
        return no_thumbs(), *forget(), NEW_CONVERSATION, 0, gr.update(value=None)

    def delete_open(browser_id: str, open_id: str):
        """The chat's trash icon: the conversation leaves the list too (its answers stay in the log)."""
        store.delete(browser_id, open_id)
        return NEW_CONVERSATION, 0, listed(browser_id, "")

    def open_conversation(chosen: str, browser_id: str, open_id: str, request: gr.Request):
        """A conversation clicked in the list: shown as it was left, its thumbs lit as the log has them."""
        if busy(request):
            gr.Warning(STILL_WRITING.format("open another conversation"))
            return {past: gr.update(value=ticked(open_id))}
        found = store.get(browser_id, chosen)
        if found is None:
            gr.Warning("That conversation is no longer on the list: it was deleted in another tab.")
            return {past: listed(browser_id, open_id)}
        state = found.state
        return {
            chatbot: with_thumbs(state["history"], state["ids"]),
            turns: state["turns"],
            ids: state["ids"],
            comment_row: gr.update(visible=False),
            status: "",
            open_box: found.id,
            version: found.version,
            past: gr.update(value=found.id),
        }

    clear.click(start_new, open_box, [chatbot, *reset, *none_open], api_visibility="private")
    past.input(
        open_conversation,
        [past, browser, open_box],
        [chatbot, turns, ids, comment_row, status, *none_open],
        api_visibility="private",
    )
    # The chatbot's own trash icon empties the screen: the follow-up history and the list's entry go.
    chatbot.clear(forget, None, reset, api_name="clear").then(
        delete_open, [browser, open_box], none_open, api_visibility="private"
    ).then(no_thumbs, None, chatbot, api_visibility="private")
