"""The chat model over real HTTP: the embedded local server, and errors a user can act on.

The happy path runs against the real local model (SmolLM2 via xllamacpp); the error
paths against a tiny real HTTP server that answers like OpenAI does (401, 404, slow).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import openai
import pytest
from answer_testkit import FakeOpenAIServer, KeywordRetriever, free_port

from qa import local_llm
from qa.chain import AnswerChain, AnswerError
from qa.llm import backend, describe_error, make_chat_model, model_label, model_notice, uses_local_model
from settings import Settings

MAX_TOKENS = 24  # the local model writes ~45 tokens/s: keep the tests quick


# --- backend choice ---------------------------------------------------------------------


def test_backend_follows_the_settings(settings_for: Callable[..., Settings]) -> None:
    local = settings_for()
    assert backend(local) == "local" and uses_local_model(local)
    assert model_label(local) == "local SmolLM2-135M-Instruct (demo quality)"
    assert "OPENAI_API_KEY" in model_notice(local) and "OPENAI_BASE_URL" in model_notice(local)

    openai_ = settings_for(openai_api_key="sk-test", openai_model="gpt-4.1-mini")
    assert backend(openai_) == "openai" and model_label(openai_) == "OpenAI gpt-4.1-mini"
    assert model_notice(openai_) == ""
    assert str(make_chat_model(openai_).openai_api_base) == "https://api.openai.com/v1"

    ollama = settings_for(openai_base_url="http://127.0.0.1:11434/v1", openai_model="qwen2.5:3b")
    assert backend(ollama) == "compatible" and not uses_local_model(ollama)  # no key needed
    assert model_label(ollama) == "qwen2.5:3b at 127.0.0.1:11434"


def test_the_local_model_is_asked_to_stop_at_its_prompts_labels_and_not_to_repeat(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]
) -> None:
    openai_server.complete("ok")
    port = int(openai_server.url.rsplit(":", 1)[1].split("/")[0])
    local = settings_for(local_llm_port=port)  # where the local backend expects its server
    make_chat_model(local, streaming=False).invoke("hi")
    sent = openai_server.requests[-1]["json"]
    assert "Question:" in sent["stop"] and sent["frequency_penalty"] > 0 and sent["presence_penalty"] > 0

    ollama = settings_for(openai_base_url=openai_server.url, openai_model="llama3.1")
    make_chat_model(ollama, streaming=False).invoke("hi")
    sent = openai_server.requests[-1]["json"]
    assert "stop" not in sent and "frequency_penalty" not in sent  # a real model gets the defaults


# --- the real local model -------------------------------------------------------------------


def test_local_model_answers_invoke_and_stream(local_settings: Settings) -> None:
    llm = make_chat_model(local_settings, max_tokens=MAX_TOKENS)
    assert llm.openai_api_base == local_llm.base_url(local_settings)

    reply = llm.invoke("What is the capital of France? Answer in one word.")
    assert reply.content.strip()

    pieces = [chunk.content for chunk in llm.stream("Count from one to ten in words.")]
    assert len([p for p in pieces if p]) > 3


def test_answer_chain_streams_from_the_local_model(
    local_settings: Settings, retriever: KeywordRetriever
) -> None:
    chain = AnswerChain(retriever, make_chat_model(local_settings, max_tokens=MAX_TOKENS), local_settings)
    assert chain.compact  # auto style: the compact prompt for the local model

    events = list(chain.stream("how do I raise the webhook timeout?"))

    answer = events[-1].answer
    assert len(events) > 3 and answer.text.strip()
    assert answer.model == "SmolLM2-135M-Instruct"
    assert answer.cited[0].source == "docs/webhooks.md"
    assert answer.first_token_ms > answer.retrieval_ms > 0
    assert answer.cut_short  # MAX_TOKENS: the model was stopped mid-answer, and the answer says so


def idle_soon(settings: Settings) -> bool:
    """Whether the local server is done writing within a few seconds."""
    deadline = time.time() + 5
    while local_llm.is_writing(settings.local_llm_port) and time.time() < deadline:
        time.sleep(0.1)
    return not local_llm.is_writing(settings.local_llm_port)


def test_a_stopped_answer_stops_the_local_model_too(
    local_settings: Settings, retriever: KeywordRetriever
) -> None:
    # ~20 s of writing (llama.cpp's `ignore_eos`: no early end): a model left running would still be
    # busy long after the checks below.
    llm = make_chat_model(local_settings, max_tokens=1000, stop=None, extra_body={"ignore_eos": True})
    chain = AnswerChain(retriever, llm, local_settings)
    question = "how do I raise the webhook timeout? list every step in detail"
    stop = threading.Event()
    pieces = []
    for event in chain.stream(question, stop=stop):
        assert event.answer is None, "a stopped stream ends without an answer"
        pieces.append(event.text)
        if len(pieces) == 3:
            assert local_llm.is_writing(local_settings.local_llm_port)  # writing
            stop.set()
    assert len(pieces) <= 5  # ended at the next token or so
    assert idle_soon(local_settings), "the server went on writing the stopped answer"

    # A stream dropped half-way (a browser gone) stops the model as well.
    stream = chain.stream(question)
    for _ in range(3):
        next(stream)
    assert local_llm.is_writing(local_settings.local_llm_port)
    closing = time.time()
    stream.close()  # returns at the next token, not once the model has written its 1000
    assert time.time() - closing < 5, "closing read the abandoned answer to its end"
    assert idle_soon(local_settings), "the server went on writing the abandoned answer"
    quick = AnswerChain(retriever, make_chat_model(local_settings, max_tokens=MAX_TOKENS), local_settings)
    assert quick.answer("how do I raise the webhook timeout?").text  # and the next question is answered


def test_the_model_that_answered_is_recorded_not_the_one_asked_for(
    local_settings: Settings, settings_for: Callable[..., Settings], retriever: KeywordRetriever
) -> None:
    # A base URL left with the default OPENAI_MODEL: llama.cpp answers any name with its own model.
    other = settings_for(openai_base_url=local_llm.base_url(local_settings), openai_api_key="any")
    llm = make_chat_model(other, max_tokens=MAX_TOKENS)
    assert llm.model_name == other.openai_model != "SmolLM2-135M-Instruct"
    answer = AnswerChain(retriever, llm, other).answer("how do I raise the webhook timeout?")
    assert answer.model == "SmolLM2-135M-Instruct"


def test_local_server_start_is_idempotent_and_reports_status(local_settings: Settings) -> None:
    running = local_llm.status(local_settings)
    assert running is not None and local_llm.is_healthy(running.port)
    again = local_llm.start(local_settings)
    assert not again.owned and again.pid == running.pid  # reused, not started twice


def test_a_busy_port_gives_a_clear_error(settings_for: Callable[..., Settings], openai_server) -> None:
    port = int(openai_server.url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(local_llm.LocalLLMError, match=f"Port {port} .* already used .*LOCAL_LLM_PORT"):
        local_llm.start(settings_for(local_llm_port=port))


def test_start_and_stop_through_the_command_line(settings_for: Callable[..., Settings], monkeypatch) -> None:
    settings = settings_for(local_llm_port=free_port(), local_llm_threads=1)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LOCAL_LLM_PORT", str(settings.local_llm_port))
    monkeypatch.setenv("LOCAL_LLM_THREADS", "1")
    try:
        assert local_llm.main(["start"]) == 0
        assert local_llm.main(["status"]) == 0
        assert local_llm.pid_file(settings).exists()
    finally:
        assert local_llm.main(["stop"]) == 0
    assert local_llm.main(["status"]) == 3
    assert not local_llm.pid_file(settings).exists()
    assert not local_llm.port_in_use(settings.local_llm_port)


def test_start_if_needed_leaves_it_off_when_another_backend_is_set(monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("LOCAL_LLM_PORT", str(free_port()))
    assert local_llm.main(["start", "--if-needed"]) == 0
    assert "not needed: answers come from" in capsys.readouterr().out
    assert local_llm.main(["status"]) == 3


def test_a_missing_model_file_says_what_to_set(settings_for: Callable[..., Settings]) -> None:
    with pytest.raises(local_llm.LocalLLMError, match=r"LOCAL_LLM_MODEL points at .*not a file"):
        local_llm.start(settings_for(local_llm_model="/nonexistent/model.gguf"))


# --- errors a user can act on (real HTTP) -----------------------------------------------------


def call(settings: Settings) -> BaseException:
    with pytest.raises(openai.OpenAIError) as caught:
        make_chat_model(settings, max_retries=0).invoke("hello")
    return caught.value


def test_wrong_key(openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]) -> None:
    openai_server.reply(401, "Incorrect API key provided: sk-wrong-123.", code="invalid_api_key")
    settings = settings_for(openai_base_url=openai_server.url, openai_api_key="sk-wrong-123")

    message = describe_error(call(settings), settings)

    assert "refused the API key (401): check OPENAI_API_KEY in .env" in message
    assert "sk-wrong" not in message
    assert openai_server.requests[0]["authorization"] == "Bearer sk-wrong-123"  # the key was sent


def test_unknown_model(openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]) -> None:
    openai_server.reply(
        404, "The model `gpt-nope` does not exist or you do not have access to it.", "model_not_found"
    )
    settings = settings_for(openai_base_url=openai_server.url, openai_api_key="k", openai_model="gpt-nope")

    message = describe_error(call(settings), settings)

    assert "doesn't know the model 'gpt-nope' (404): set OPENAI_MODEL" in message
    assert openai_server.requests[0]["json"]["model"] == "gpt-nope"


def test_unreachable_base_url(settings_for: Callable[..., Settings]) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings = settings_for(openai_base_url=url)

    message = describe_error(call(settings), settings)

    assert f"can't be reached ({url}/chat/completions)" in message
    assert "check OPENAI_BASE_URL" in message


def test_local_model_not_running(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(local_llm_port=free_port())
    message = describe_error(call(settings), settings)
    assert message.startswith("The local model isn't answering right now")
    assert "ask again in a few seconds" in message and "make run" in message
    assert str(local_llm.log_file(settings)) in message


def test_a_local_model_that_dies_is_restarted(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(local_llm_port=free_port())
    first = local_llm.start(settings, timeout=90)
    watchdog = threading.Event()
    thread = threading.Thread(target=local_llm.keep_running, args=(settings, watchdog, 0.2), daemon=True)
    thread.start()
    try:
        os.kill(first.pid, signal.SIGKILL)  # out of memory, or killed by hand
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            again = local_llm.status(settings)
            if again is not None and again.pid != first.pid and local_llm.is_healthy(again.port):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the local model was not restarted")
        assert make_chat_model(settings, max_tokens=8).invoke("Say OK.").content
    finally:
        watchdog.set()
        thread.join(timeout=5)
        local_llm.stop(settings)


def test_timeout(openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]) -> None:
    openai_server.reply(200, delay=2.0)
    settings = settings_for(openai_base_url=openai_server.url, llm_timeout=0.3)

    message = describe_error(call(settings), settings)

    assert "did not answer within 0.3 s (LLM_TIMEOUT)" in message


def test_the_chain_shows_the_error_as_a_sentence(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings], retriever: KeywordRetriever
) -> None:
    openai_server.reply(401, "Incorrect API key provided.", code="invalid_api_key")
    settings = settings_for(openai_base_url=openai_server.url, openai_api_key="bad")
    chain = AnswerChain(retriever, make_chat_model(settings, max_retries=0), settings)

    with pytest.raises(AnswerError) as caught:
        chain.answer("which port?")

    assert str(caught.value).endswith("refused the API key (401): check OPENAI_API_KEY in .env.")
