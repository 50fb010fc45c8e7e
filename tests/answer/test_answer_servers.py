"""An OpenAI-compatible server set up wrong, or misbehaving, as a user meets it: one sentence saying
what is wrong and what to change, never a hang without end. Against a real local HTTP server that
answers like OpenAI, Ollama, LM Studio or a proxy would (`answer_testkit.FakeOpenAIServer`)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from answer_testkit import FakeOpenAIServer, KeywordRetriever

import ingest
from qa.chain import AnswerChain, AnswerError
from qa.embeddings import EmbeddingModelError, make_embeddings
from qa.evaluate import main as evaluate_main
from qa.judge import make_judge
from qa.llm import ReplyError, describe_error
from qa.prompts import answer_prompt
from qa.revise import ReviewedAnswer, RevisionError, make_reviser
from settings import Settings

QUESTION = "how do I raise the webhook timeout?"


def ask(settings: Settings, retriever: KeywordRetriever) -> str:
    """What the chat shows for QUESTION: the answer's text, or the error's sentence."""
    chain = AnswerChain(retriever, settings=settings)  # the model the settings make, as the app does
    try:
        return chain.answer(QUESTION).text
    except AnswerError as exc:
        return f"error: {exc}"


def within(seconds: float, call: Callable[[], object]) -> object:
    """What `call` returns or raises, failing the test (not hanging it) if it takes longer."""
    done: list[object] = []

    def run() -> None:
        try:
            done.append(call())
        except Exception as exc:  # handed back to the test
            done.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still waiting after {seconds} s")
    return done[0]


@pytest.fixture
def server_settings(openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]) -> Settings:
    return settings_for(openai_base_url=openai_server.url, openai_model="llama3.1")


# --- the base URL -------------------------------------------------------------------------------


def test_a_base_url_that_serves_a_web_page_says_where_the_api_is(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever
) -> None:
    openai_server.html("<html><head><title>Open WebUI</title></head><body>app</body></html>")

    said = ask(server_settings, retriever)

    assert 'answered with a web page ("Open WebUI"), not the OpenAI API' in said
    assert "Set OPENAI_BASE_URL" in said and "ends in /v1" in said


def test_an_error_sent_with_status_200_is_shown_not_an_empty_reply(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever
) -> None:
    # LM Studio's answer to a base URL without /v1
    openai_server.reply(200, "Unexpected endpoint or method. (POST /chat/completions). Returning 200 anyway")

    said = ask(server_settings, retriever)

    assert "answered with an error: Unexpected endpoint or method. (POST /chat/completions)" in said
    assert "OPENAI_BASE_URL" in said


def test_a_base_url_without_http_is_named(settings_for: Callable[..., Settings], retriever) -> None:
    settings = settings_for(openai_base_url="127.0.0.1:11434/v1", openai_model="llama3.1")

    said = ask(settings, retriever)

    assert said == (
        "error: OPENAI_BASE_URL='127.0.0.1:11434/v1' is not a web address: write it with http:// (or https://) "
        "in front, e.g. OPENAI_BASE_URL=http://127.0.0.1:11434/v1."
    )


def test_https_to_a_plain_http_server_says_to_write_http(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings], retriever: KeywordRetriever
) -> None:
    openai_server.stream("ok")
    settings = settings_for(openai_base_url=openai_server.url.replace("http://", "https://"))

    said = ask(settings, retriever)

    assert "the TLS handshake failed" in said and "write OPENAI_BASE_URL with http://" in said


def test_a_proxys_error_page_is_named_by_its_title_not_its_markup(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever
) -> None:
    openai_server.html("<html><head><title>502 Bad Gateway</title></head><body><hr>nginx</body></html>", 502)

    said = ask(server_settings, retriever)

    assert "failed (502)" in said and said.endswith("It said: 502 Bad Gateway")


# --- replies that are not the usual stream ----------------------------------------------------------


def test_a_server_that_does_not_stream_is_answered_all_the_same(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever
) -> None:
    openai_server.complete("Set WEBHOOK_TIMEOUT [1].", model="llama3.1:8b")  # JSON, to a request for a stream

    answer = AnswerChain(retriever, settings=server_settings).answer(QUESTION)

    assert openai_server.requests[-1]["json"]["stream"] is True
    assert answer.text == "Set WEBHOOK_TIMEOUT [1]." and answer.model == "llama3.1:8b"
    assert answer.cited[0].source == "docs/webhooks.md"


@pytest.mark.parametrize("reply", ["streamed", "whole"])
def test_an_empty_answer_is_an_error_not_a_logged_answer(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever, reply: str
) -> None:
    openai_server.stream() if reply == "streamed" else openai_server.complete(None)

    said = ask(server_settings, retriever)

    assert said.startswith("error: The model server at http://127.0.0.1:")
    assert "sent back an empty answer with model 'm'" in said and "set OPENAI_MODEL" in said


def test_a_reasoning_model_out_of_tokens_is_told_to_raise_the_cap(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever
) -> None:
    openai_server.stream(finish="length")

    said = ask(server_settings, retriever)

    assert "used the whole answer length (LLM_MAX_TOKENS) without writing any answer text" in said


def test_a_reply_that_is_not_the_apis_is_named(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever
) -> None:
    openai_server.status, openai_server.body = 200, {"status": "ok", "version": "2.1"}  # a health endpoint

    said = ask(server_settings, retriever)

    assert 'sent a reply that is not the OpenAI API\'s (it began: \'{"status": "ok"' in said
    assert "Set OPENAI_BASE_URL" in said


def test_an_empty_reply_to_the_judge_is_logged_as_such(
    openai_server: FakeOpenAIServer, server_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    openai_server.complete("", model="judge-1")

    assert make_judge(server_settings).rate("q?", "an answer [1]", "[1] excerpt") is None
    assert (
        "the judge model judge-1 sent back an empty reply" in caplog.text and "PRE_RATE_MODEL" in caplog.text
    )


# --- slow, stalled and dropped streams ----------------------------------------------------------


def test_keep_alives_without_an_answer_do_not_hold_the_chat_for_ever(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings], retriever: KeywordRetriever
) -> None:
    openai_server.keepalive = 0.1  # ": keep-alive" comments, as proxies send while a model is queued
    settings = settings_for(openai_base_url=openai_server.url, llm_timeout=0.4)

    said = within(10, lambda: ask(settings, retriever))

    assert (
        isinstance(said, str)
        and "was still sending its reply after 2 s (5 × LLM_TIMEOUT)" in said
        and "raise LLM_TIMEOUT" in said
    )


def test_the_judge_is_not_held_for_ever_either(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]
) -> None:
    openai_server.keepalive = 0.1  # blank lines before a JSON reply that never comes
    settings = settings_for(openai_base_url=openai_server.url, llm_timeout=0.4, pre_rate="on")

    failed = within(10, lambda: make_judge(settings).rate("q?", "an answer [1]", "[1] excerpt"))

    assert isinstance(failed, ReplyError)
    assert "was still sending its reply after 2 s" in describe_error(failed, settings)


def test_a_stream_that_stalls_mid_answer_says_so(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings], retriever: KeywordRetriever
) -> None:
    openai_server.stream("Set ", "WEBHOOK_TIMEOUT", delay=2)
    settings = settings_for(openai_base_url=openai_server.url, llm_timeout=0.5)

    said = ask(settings, retriever)

    assert "stopped writing for more than 0.5 s (LLM_TIMEOUT) in the middle of the answer" in said


def test_a_stream_cut_off_mid_answer_is_not_called_unreachable(
    openai_server: FakeOpenAIServer, server_settings: Settings, retriever: KeywordRetriever
) -> None:
    openai_server.stream("Set ", "WEBHOOK_TIMEOUT ", "to ", "raise it [1].", drop_after=2)

    said = ask(server_settings, retriever)

    assert "closed the connection in the middle of the answer" in said and "can't be reached" not in said


# --- rate limits, and the models of the judge and the reviser -------------------------------------


def test_a_used_up_quota_is_not_told_to_wait_a_minute(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings], retriever: KeywordRetriever
) -> None:
    settings = settings_for(openai_base_url=openai_server.url, openai_api_key="k")
    openai_server.reply(429, "You exceeded your current quota, please check your plan.", "insufficient_quota")
    assert "this key's quota is used up (429): add credit" in ask(settings, retriever)

    openai_server.reply(429, "Rate limit reached. Please try again in 20s.", "rate_limit_exceeded")
    assert "is rate-limiting this key (429): wait a minute and ask again" in ask(settings, retriever)


def test_an_unknown_judge_or_reviser_model_names_its_own_setting(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]
) -> None:
    openai_server.reply(404, "model not found, try pulling it first")
    settings = settings_for(
        openai_base_url=openai_server.url,
        openai_model="llama3.1",
        pre_rate_model="judge9",
        revise_model="rev9",
    )

    with pytest.raises(Exception) as judged:
        make_judge(settings).rate("q?", "an answer [1]", "[1] excerpt")
    with pytest.raises(Exception) as revised:
        make_reviser(settings).draft(answer_prompt(False), [ReviewedAnswer("1", "q", "a", "bad", "wrong")])

    assert "doesn't know the model 'judge9' (404): set PRE_RATE_MODEL" in describe_error(
        judged.value, settings
    )
    assert "doesn't know the model 'rev9' (404): set REVISE_MODEL" in describe_error(revised.value, settings)


def test_an_empty_reply_to_the_reviser_says_so(
    openai_server: FakeOpenAIServer, server_settings: Settings
) -> None:
    openai_server.complete("")

    with pytest.raises(RevisionError, match="The model sent back an empty reply: nothing was saved"):
        make_reviser(server_settings).draft(answer_prompt(False), [ReviewedAnswer("1", "q", "a", "bad", "x")])


# --- embeddings (EMBEDDINGS=openai) ---------------------------------------------------------------


def test_openai_embeddings_from_a_compatible_server_need_no_key_and_send_text(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]
) -> None:
    openai_server.embeddings(64)  # Ollama, vLLM: no key, and text only (token ids get a 400)
    settings = settings_for(
        embeddings="openai", openai_base_url=openai_server.url, openai_embeddings_model="nomic-embed-text"
    )

    embeddings = make_embeddings(settings)
    vectors = embeddings.embed_documents(["Webhooks time out after 1 second.", "Set WEBHOOK_TIMEOUT."])

    assert [len(v) for v in vectors] == [64, 64] and len(embeddings.embed_query("webhooks")) == 64
    sent = openai_server.requests[0]
    assert sent["path"] == "/v1/embeddings" and sent["json"]["model"] == "nomic-embed-text"
    assert sent["json"]["input"] == ["Webhooks time out after 1 second.", "Set WEBHOOK_TIMEOUT."]


def test_embedding_failures_are_sentences_naming_the_setting(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(embeddings="openai", openai_base_url=openai_server.url, openai_api_key="k")
    openai_server.reply(404, "model 'text-embedding-3-small' not found, try pulling it first")

    with pytest.raises(EmbeddingModelError) as caught:
        make_embeddings(settings).embed_query("webhooks")

    assert str(caught.value).startswith(
        "Embedding with EMBEDDINGS=openai failed: The model server at http://"
    )
    assert "doesn't know the model 'text-embedding-3-small' (404): set OPENAI_EMBEDDINGS_MODEL" in str(
        caught.value
    )


def one_page_repo(tmp_path: Path) -> Path:
    """A git repo with one page, to ingest with EMBEDDINGS=openai."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "webhooks.md").write_text("# Webhooks\n\nWebhook connections time out after 1 second.\n")
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "docs"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *command], cwd=docs, check=True)
    return docs


def test_ingest_with_a_refused_embeddings_key_prints_the_fix(
    openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    docs = one_page_repo(tmp_path)
    openai_server.reply(401, "Incorrect API key provided: sk-bad.", code="invalid_api_key")
    monkeypatch.chdir(tmp_path)  # no developer .env
    for name, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "EMBEDDINGS": "openai",
        "OPENAI_API_KEY": "sk-bad",
        "OPENAI_BASE_URL": openai_server.url,
    }.items():
        monkeypatch.setenv(name, value)

    assert ingest.main(["--repo", str(docs)]) == 2

    err = capsys.readouterr().err
    assert "error: Embedding with EMBEDDINGS=openai failed: The model server at http://127.0.0.1:" in err
    assert "refused the API key (401): check OPENAI_API_KEY in .env." in err
    assert "Traceback" not in err


def test_evaluate_with_an_embeddings_server_that_fails_prints_the_fix(
    openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    docs = one_page_repo(tmp_path)
    questions = tmp_path / "mine.jsonl"
    questions.write_text('{"question": "webhook timeout?", "gold_sources": ["webhooks.md"]}\n')
    monkeypatch.chdir(tmp_path)  # no developer .env
    for name, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "EMBEDDINGS": "openai",
        "OPENAI_BASE_URL": openai_server.url,  # a server that embeds (Ollama, vLLM): no key needed
    }.items():
        monkeypatch.setenv(name, value)
    openai_server.embeddings()
    assert ingest.main(["--repo", str(docs)]) == 0
    openai_server.embeddings(0)
    openai_server.reply(404, "model 'text-embedding-3-small' not found", code="model_not_found")

    assert evaluate_main([str(questions)]) == 2

    err = capsys.readouterr().err
    assert "error: Embedding with EMBEDDINGS=openai failed: " in err and "OPENAI_EMBEDDINGS_MODEL" in err
    assert "Traceback" not in err
