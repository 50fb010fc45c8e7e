"""The chat through gradio_client, as another program (or a test) would drive it.

gr.State (the per-session turns and exchange ids) stays on the server, keyed by
the client's session: one Client is one browser tab.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import re
import urllib.request

from appkit import ANSWER, WEB, FakeChat, add_page, fake_llm, free_port, make_docs_repo, serve
from gradio_client import Client
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from ui.chat import header_markdown
from ui.context import judged


def text_of(message: dict) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def test_answer_with_cited_source_links_is_logged(running_app) -> None:
    client = Client(running_app.url, verbose=False)
    before = running_app.ctx.log.counts()["exchanges"]
    box, history = client.predict("how do I stop the browser tab from opening on start?", [], api_name="/ask")
    assert box == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    answer = text_of(history[-1])
    assert "--no-browser" in answer
    assert f"]({WEB}/blob/" in answer and "guide/start.md" in answer  # the cited [1] as a link
    assert running_app.ctx.log.counts()["exchanges"] == before + 1
    logged = running_app.ctx.log.recent(1)[0]
    assert logged.answer == ANSWER and logged.question.startswith("how do I stop")
    assert logged.prompt_version and logged.docs_commit == running_app.ctx.docs.commit


def test_streaming_yields_several_updates(running_app) -> None:
    client = Client(running_app.url, verbose=False)
    job = client.submit("how do I stop the browser tab from opening?", [], api_name="/ask")
    updates = list(job)
    assert len(updates) >= 4  # question echoed, then the answer piece by piece


def test_empty_and_overlong_questions_are_refused_and_kept(running_app) -> None:
    client = Client(running_app.url, verbose=False)
    for question in ["   ", "x" * (running_app.ctx.settings.max_question_chars + 1)]:
        box, history = client.predict(question, [], api_name="/ask")
        assert history == []
        assert box == question  # what was typed is not lost


def test_html_in_a_question_is_shown_as_text(running_app) -> None:
    client = Client(running_app.url, verbose=False)
    question = "<script>alert('x')</script> <img src=x onerror=alert(1)> export units?"
    _, history = client.predict(question, [], api_name="/ask")
    shown = text_of(history[0])
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "<img" not in shown


def test_concurrent_users_each_keep_their_own_history(running_app) -> None:
    def conversation(q: str):
        client = Client(running_app.url, verbose=False)
        _, history = client.predict(q, [], api_name="/ask")
        return client.predict("and how else?", history, api_name="/ask")[1]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a, b = pool.map(
            conversation, ["how to start without a browser?", "what units are exported coordinates in?"]
        )
    assert [m["role"] for m in a] == ["user", "assistant"] * 2 == [m["role"] for m in b]
    assert text_of(a[0]).startswith("how to start") and text_of(b[0]).startswith("what units")
    standalone = {
        e.standalone_question for e in running_app.ctx.log.recent(10) if e.question == "and how else?"
    }
    assert len(standalone) == 2  # each follow-up was condensed with its own conversation


def test_healthz_and_empty_store_screen(running_app, tmp_path, monkeypatch) -> None:
    with urllib.request.urlopen(running_app.url + "/healthz") as resp:
        assert b'"ingested":true' in resp.read()
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    from app import build_context
    from settings import get_settings
    from ui.chat import empty_markdown

    ctx = build_context(get_settings())
    assert ctx.chain is None
    assert "python ingest.py" in empty_markdown(ctx)


def test_the_chatbots_trash_icon_forgets_the_conversation(running_app) -> None:
    client = Client(running_app.url, verbose=False)
    client.predict("how do I start without opening a browser?", [], api_name="/ask")
    client.predict(api_name="/clear")  # what the trash icon above the chat does
    client.predict("and on another port?", [], api_name="/ask")
    follow_up = running_app.ctx.log.recent(1)[0]
    assert follow_up.standalone_question == "and on another port?"  # no earlier question glued on


def test_an_answer_citing_passages_1_and_3_lists_and_cites_them_as_1_and_2(app_data, monkeypatch) -> None:
    """The prompt numbers passages by rank; the list showed only the cited ones, so [1] and [3]."""
    monkeypatch.setenv("DATA_DIR", str(app_data))
    monkeypatch.setenv("PROMPT_STYLE", "chat")  # the numbered prompt of a model with an API key
    from app import build_context
    from settings import get_settings

    answer = "Start it with label-studio start --no-browser [1]; exports are in percentages [3]."
    ctx = build_context(get_settings(port=free_port()), llm=fake_llm(answer=answer))
    with serve(ctx) as url:
        _, history = Client(url, verbose=False).predict(
            "How do I start it without opening a browser tab?", [], api_name="/ask"
        )
    shown = text_of(history[-1])
    logged = ctx.log.recent(1)[0]
    assert [c["n"] for c in logged.cited] == [1, 3]  # the log keeps the prompt's numbers
    assert "--no-browser [1]; exports are in percentages [2]." in shown
    listed = [line for line in shown.splitlines() if line.startswith("- [")]
    assert [line[:5] for line in listed] == ["- [1]", "- [2]"]
    assert "guide/start.md" in listed[0] and logged.cited[1]["source"] in listed[1]


def test_under_the_local_models_answers_the_cited_lines_show_open(running_app, monkeypatch) -> None:
    """The bundled model's answers hold few of the facts its cited lines do (`bench/answer.py`)."""
    question = "How do I start it without opening a browser tab?"
    client = Client(running_app.url, verbose=False)
    _, folded = client.predict(question, [], api_name="/ask")
    # what build_context says when no key or base URL is set (a model passed in is not the bundled one)
    monkeypatch.setattr(running_app.ctx, "local_model", True)
    _, opened = client.predict(question, [], api_name="/ask")
    assert "<details><summary>What the sources say</summary>" in text_of(folded[-1])
    assert "<details open><summary>What the sources say</summary>" in text_of(opened[-1])


class ServesAnotherModel(FakeChat):
    """Streams its answer, then says (as a server's last chunk does) which model wrote it."""

    def _stream(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        yield from super()._stream(*args, **kwargs)
        named = {"model_name": "qwen2.5-7b-instruct-q4_k_m.gguf", "finish_reason": "stop"}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=named))


def test_the_header_names_the_model_the_server_answers_with_when_it_is_not_the_one_asked(
    app_data, monkeypatch
) -> None:
    """llama.cpp answers any OPENAI_MODEL with the model it loaded: the header says which that is."""
    monkeypatch.setenv("DATA_DIR", str(app_data))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_MODEL", "llama3.1")
    from app import build_context
    from settings import get_settings

    monkeypatch.setenv("PRE_RATE", "off")
    ctx = build_context(
        get_settings(port=free_port()), llm=ServesAnotherModel(messages=itertools.cycle([AIMessage(ANSWER)]))
    )
    assert "(the server answers as" not in header_markdown(ctx)  # nothing answered yet
    with serve(ctx) as url:
        Client(url, verbose=False).predict("How do I start it without a browser tab?", [], api_name="/ask")
    assert ctx.log.recent(1)[0].model == "qwen2.5-7b-instruct-q4_k_m.gguf"
    assert "llama3.1 at 127.0.0.1:8000 (the server answers as qwen2.5-7b-instruct-q4" in header_markdown(ctx)


class DropsMidAnswer(FakeChat):
    """Writes a few words, then loses its server: a connection dropped in the middle of the answer."""

    def _stream(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        for n, chunk in enumerate(super()._stream(*args, **kwargs)):
            if n == 6:
                raise ConnectionError("Connection reset by peer")
            yield chunk


def test_an_answer_that_fails_midway_keeps_its_words_under_the_error(app_data, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(app_data))
    from app import build_context
    from settings import get_settings

    llm = DropsMidAnswer(
        messages=itertools.cycle([AIMessage("Start it with label-studio start --no-browser [1].")])
    )
    ctx = build_context(get_settings(port=free_port()), llm=llm)
    before = ctx.log.counts()["exchanges"]
    with serve(ctx) as url:
        _, history = Client(url, verbose=False).predict(
            "How do I start it without opening a browser tab?", [], api_name="/ask"
        )
    shown = text_of(history[-1])
    assert shown.startswith("⚠️") and "Connection reset by peer" in shown
    assert "What was written before it failed" in shown
    assert shown.endswith("Start it with ")  # the words read so far, still there
    assert ctx.log.counts()["exchanges"] == before  # not logged: half an answer is not rated


def test_the_header_shows_when_the_docs_were_ingested_as_people_read_a_time(running_app) -> None:
    header = header_markdown(running_app.ctx)
    when = header.split("ingested ", 1)[1]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\)", when), header  # not 2026-11-23T06:09:57+00:00


def healthz(url: str) -> dict:
    with urllib.request.urlopen(url + "/healthz") as resp:
        return json.loads(resp.read())


def test_an_app_started_before_ingest_answers_after_it_without_a_restart(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCS_WEB_BASE", WEB)
    from app import build_context
    from ingest import run_ingest
    from settings import get_settings

    settings = get_settings(port=free_port())
    ctx = build_context(settings, llm=fake_llm())
    assert ctx.chain is None
    repo = make_docs_repo(tmp_path / "docs")
    with serve(ctx) as url:
        client = Client(url, verbose=False)
        question = "how do I start without opening a browser tab?"
        assert client.predict(question, [], api_name="/ask") == (question, [])  # nothing to search yet
        assert healthz(url)["ingested"] is False

        first = run_ingest(settings, repo=str(repo), progress=False)  # beside the running app
        _, history = client.predict(question, [], api_name="/ask")
        assert "guide/start.md" in text_of(history[-1])
        assert healthz(url) == {"ok": True, "ingested": True, "commit": first.commit, "docs_update": None}

        add_page(
            repo,
            "guide/palette.md",
            "---\ntitle: Command palette\n---\n\nPress Ctrl+K to open the command palette.\n",
        )
        second = run_ingest(settings, repo=str(repo), progress=False)
        _, history = Client(url, verbose=False).predict(
            "how do I open the command palette?", [], api_name="/ask"
        )
        assert "guide/palette.md" in text_of(history[-1])
        assert ctx.log.recent(1)[0].docs_commit == second.commit != first.commit


def test_a_long_conversation_keeps_its_latest_messages_with_their_thumbs() -> None:
    from ui.conversations import KEPT_MESSAGES, kept_conversation

    n = KEPT_MESSAGES // 2 + 3  # exchanges: three more than the browser keeps
    history = [
        m
        for i in range(n)
        for m in ({"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"})
    ]
    turns = [{"question": f"q{i}", "answer": f"a{i}", "exchange_id": f"x{i}"} for i in range(n)]
    ids = {str(2 * i + 1): f"x{i}" for i in range(n)}

    kept = kept_conversation(history, turns, ids)

    assert len(kept["history"]) == KEPT_MESSAGES and kept["history"][0]["content"] == "q3"
    assert kept["ids"]["1"] == "x3"  # a thumb on the first answer shown rates exchange x3
    assert all(kept["history"][int(k)]["content"] == "a" + v[1:] for k, v in kept["ids"].items())
    assert [t["exchange_id"] for t in kept["turns"]] == [f"x{i}" for i in range(3, n)]
    assert kept_conversation(history[:4], turns[:2], {"1": "x0", "3": "x1"})["ids"] == {"1": "x0", "3": "x1"}


def test_example_questions_and_the_question_hint_follow_the_docs_ingested() -> None:
    from types import SimpleNamespace

    from qa.store import IndexState
    from settings import get_settings
    from ui.chat import LABEL_STUDIO_EXAMPLES, chat_examples, question_placeholder

    def context(setting: str, repo: str, files: tuple[str, ...] = ()) -> SimpleNamespace:
        docs = IndexState(repo=repo, files=dict.fromkeys(files, "blob"))
        return SimpleNamespace(settings=get_settings(chat_examples=setting), docs=docs)

    def shown(setting: str, repo: str, files: tuple[str, ...] = ()) -> list[str]:
        return [e["text"] for e in chat_examples(context(setting, repo, files))]  # type: ignore[arg-type]

    # and the question box's hint, also when the examples are switched off
    hint = question_placeholder(context("", "https://github.com/HumanSignal/label-studio"))  # type: ignore[arg-type]
    assert "Label Studio" in hint
    assert "Label Studio" not in question_placeholder(context("auto", "/srv/handbook"))  # type: ignore[arg-type]

    assert shown("auto", "https://github.com/HumanSignal/label-studio") == list(LABEL_STUDIO_EXAMPLES)
    assert shown("auto", "git@github.com:HumanSignal/label-studio.git") == list(LABEL_STUDIO_EXAMPLES)
    assert shown("auto", "https://github.com/acme/handbook") == []  # questions about another repo's docs
    assert shown("auto", "") == []  # nothing ingested yet
    pages = tuple(
        f"docs/source/guide/{p}.md" for p in ("start", "storage", "export", "ml", "labeling", "faq")
    )
    assert shown("auto", "/srv/label-studio-docs.bundle", pages) == list(
        LABEL_STUDIO_EXAMPLES
    )  # a clone of it
    assert shown("auto", "/srv/handbook", pages[:2]) == []
    assert shown("Where are the invoices? | |How do I log in?", "/srv/docs") == [
        "Where are the invoices?",
        "How do I log in?",
    ]
    assert shown("", "https://github.com/HumanSignal/label-studio") == []


def test_a_question_asked_again_shows_the_reviewers_verdict_on_the_earlier_answer(running_app) -> None:
    log = running_app.ctx.log
    client = Client(running_app.url, verbose=False)
    client.predict("which units are exported image coordinates in?", [], api_name="/ask")
    earlier = log.recent(1)[0]
    log.review(earlier.id, "bad", "they are percentages of the image size", reviewer="ana", source="inline")

    _, history = client.predict("what units are the exported image coordinates in?", [], api_name="/ask")
    shown = text_of(history[-1])
    assert (
        f"**⚠️ A reviewer marked an earlier answer to this question wrong** (ana, {log.get(earlier.id).reviewed_at[:10]})"
        in shown
    )
    assert "They said: “they are percentages of the image size”" in shown
    assert "<summary>The earlier answer</summary>" in shown and f"> {ANSWER}" in shown
    again = log.recent(1)[0]
    assert (again.reused_from, again.reused_verdict) == (earlier.id, "bad")  # the report can compare them

    log.review(
        earlier.id, "good", "right they are percentages", reviewer="bo", source="inline"
    )  # a change of mind reaches the next answer, with what the reviewer said
    _, history = client.predict("what units are the exported image coordinates in?", [], api_name="/ask")
    assert "**✅ A reviewer approved an earlier answer to this question** (bo, " in text_of(history[-1])
    assert "They said: “right they are percentages”" in text_of(history[-1])
    _, history = client.predict("how do I start without opening a browser?", [], api_name="/ask")
    assert "earlier answer" not in text_of(history[-1])  # another question
    assert "approved answers to similar" not in text_of(history[-1])

    # A similar question (cosine 0.69), not the same: the approved answer's sources are searched first.
    _, history = client.predict("do exported coordinates use pixels?", [], api_name="/ask")
    shown = text_of(history[-1])
    assert "earlier answer" not in shown
    assert (
        "**📌 Ranked with the help of approved answers to similar questions:** "
        "“which units are exported image coordinates in?” (bo)"
    ) in shown
    assert log.recent(1)[0].helped_by == [earlier.id]  # the report's "reused" grouping counts it


def test_a_rejection_for_wrong_passages_reaches_the_chain_as_places_to_lower(running_app) -> None:
    log = running_app.ctx.log
    cited = [{"n": 1, "source": "guide/start.md", "section": "Start", "url": "", "quote": ""}]
    exchange_id = log.record_exchange(question="which port?", answer="8080 [1].", cited=cited)
    log.review(
        exchange_id, "bad", "", reviewer="ana", problems=["Wrong passages: the sources don't answer it"]
    )
    rejected = judged(log.get(exchange_id))
    assert (rejected.problems, rejected.cited, rejected.places_sign) == (
        ("wrong_sources",),
        (("guide/start.md", "Start"),),
        -1,
    )
    log.review(exchange_id, "bad", "", reviewer="ana", problems=["unclear"])  # the wording, not the passages
    assert judged(log.get(exchange_id)).places_sign == 0


def test_a_judged_follow_up_is_reused_by_the_question_it_stood_for(running_app) -> None:
    log = running_app.ctx.log
    follow_up = log.record_exchange(
        question="can I raise it?", standalone_question="webhook timeout can I raise it?", answer="No."
    )
    log.review(follow_up, "bad", "WEBHOOK_TIMEOUT raises it", reviewer="ana", source="inline")
    assert judged(log.get(follow_up)).question == "webhook timeout can I raise it?"


def test_passages_rejected_as_wrong_rank_lower_for_a_similar_question_which_says_so(running_app) -> None:
    # Last in this module: the verdict it gives stays in the app's log.
    log = running_app.ctx.log
    client = Client(running_app.url, verbose=False)
    client.predict("how do I start without opening a browser tab?", [], api_name="/ask")
    earlier = log.recent(1)[0]
    assert earlier.cited
    log.review(earlier.id, "bad", "", reviewer="cy", source="inline", problems=["wrong_sources"])

    # Another user's similar question (cosine 0.67): what the rejected answer cited ranks lower, named.
    other = Client(running_app.url, verbose=False)
    _, history = other.predict("start it headless, no web browser popping up?", [], api_name="/ask")
    shown = text_of(history[-1])
    assert (
        "**⬇️ Ranked lower: the passages reviewers marked wrong for similar questions:** "
        "“how do I start without opening a browser tab?” (cy)"
    ) in shown
    assert "📌" not in shown and "earlier answer" not in shown  # neither help nor the same question
    assert log.recent(1)[0].lowered_by == [earlier.id]  # the report's "reused" grouping counts it
