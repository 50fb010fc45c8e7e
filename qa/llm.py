"""The chat model: one `ChatOpenAI` code path for OpenAI, any OpenAI-compatible server, or the local model.

Which backend answers is decided by settings alone:

- `OPENAI_BASE_URL` set: that server (Ollama, vLLM, llama.cpp, LiteLLM, Azure-style
  proxies...) with `OPENAI_MODEL`, and `OPENAI_API_KEY` if it needs one;
- else `OPENAI_API_KEY` set: OpenAI with `OPENAI_MODEL`;
- else: the embedded local model (`qa.local_llm`), which must be running.

Keeping every backend behind the same client means streaming, timeouts and error
handling are written and tested once, against a real HTTP server.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import openai
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from qa import local_llm
from settings import Settings

log = logging.getLogger(__name__)

Backend = Literal["openai", "compatible", "local"]
LOCAL_API_KEY = "local-no-key"  # the local server checks no key, but the client wants one
# The tiny local model loops ("create a bucket with -B" six times) and, done answering, writes the
# next "Question:" of its prompt's layout. Measured on 20 public and 20 dev questions with their
# answer_facts (the share found in the answer text): stop sequences alone end the leaks (3 of 20);
# penalties on repeated tokens also cut the looping answers from 15 to 5 and 4 of 20 and raise
# the facts from 0.12 to 0.26 (public) and 0.07 to 0.17 (dev); answers are half as long and fast.
LOCAL_STOP = ["\nQuestion:", "Question:", "\nContext:"]
LOCAL_FREQUENCY_PENALTY = 0.5
LOCAL_PRESENCE_PENALTY = 0.5


def backend(settings: Settings) -> Backend:
    if settings.local_model_answers:
        return "local"
    return "compatible" if settings.openai_base_url else "openai"


def uses_local_model(settings: Settings) -> bool:
    """True when the embedded local model must be running (no key and no base URL set)."""
    return backend(settings) == "local"


def base_url(settings: Settings) -> str:
    """The OpenAI-compatible endpoint the client talks to."""
    kind = backend(settings)
    if kind == "local":
        return local_llm.base_url(settings)
    if kind == "compatible":
        return settings.openai_base_url.rstrip("/")
    return "https://api.openai.com/v1"


def model_name(settings: Settings) -> str:
    return local_llm.model_name(settings) if uses_local_model(settings) else settings.openai_model


def model_label(settings: Settings) -> str:
    """The model, as the UI header names it."""
    kind = backend(settings)
    if kind == "openai":
        return f"OpenAI {settings.openai_model}"
    if kind == "compatible":
        where = urlsplit(settings.openai_base_url).netloc or settings.openai_base_url
        return f"{settings.openai_model} at {where}"
    return f"local {local_llm.model_name(settings)} (demo quality)"


def model_notice(settings: Settings) -> str:
    """A warning for the UI when answers come from the tiny local model ('' otherwise)."""
    if not uses_local_model(settings) or settings.local_llm_model:
        return ""
    return (
        f"Answers come from {local_llm.BUNDLED_MODEL_NAME}, a tiny model that runs on any CPU: it often "
        "misreads the docs, so check the linked sources. For good answers set OPENAI_API_KEY in .env, "
        "or OPENAI_BASE_URL and OPENAI_MODEL for a local server such as Ollama or vLLM."
    )


def make_chat_model(settings: Settings, **overrides: object) -> ChatOpenAI:
    """Build the chat model for the configured backend (streaming, few retries, bounded time).

    `overrides` go straight to `ChatOpenAI` (tests use `max_tokens=...`).
    """
    local = uses_local_model(settings)
    options: dict[str, object] = {
        "model": model_name(settings),
        "api_key": settings.openai_api_key or LOCAL_API_KEY,
        "base_url": base_url(settings),  # explicit, so a stray OPENAI_API_BASE in the env is not used
        "streaming": True,
        "max_retries": 1,  # a user is waiting: fail fast with a clear message instead
        "timeout": settings.llm_timeout,
        "temperature": settings.llm_temperature,
        "max_tokens": settings.local_llm_max_tokens if local else settings.llm_max_tokens,
    }
    if local:
        options.update(
            stop=LOCAL_STOP,
            frequency_penalty=LOCAL_FREQUENCY_PENALTY,
            presence_penalty=LOCAL_PRESENCE_PENALTY,
        )
    options.update(overrides)
    return ChatOpenAI(**options)  # type: ignore[arg-type]


def make_side_model(settings: Settings, model: str, max_tokens: int, **overrides: object) -> ChatOpenAI:
    """A model for one whole reply off the chat path (the judge, the prompt reviser).

    `model`: another model on the same server (PRE_RATE_MODEL, REVISE_MODEL); empty = OPENAI_MODEL.
    """
    if model:
        overrides["model"] = model
    return make_chat_model(settings, streaming=False, max_tokens=max_tokens, **overrides)


def model_id(llm: BaseChatModel) -> str:
    """The model name recorded with an answer (fake models in tests report their type)."""
    return str(getattr(llm, "model_name", None) or getattr(llm, "model", None) or llm._llm_type)


class ServedModel(BaseCallbackHandler):
    """Catches the model name the server reports in its response, and why the answer ended.

    An OpenAI-compatible server may serve another model than the one asked for: llama.cpp
    answers any name with the model it loaded, so a base URL left with the default
    OPENAI_MODEL logged SmolLM2's answers as gpt-4.1-mini, and accuracy per model with them.
    OpenAI reports the dated snapshot that answered. A finish reason of "length" means the
    answer hit its token cap mid-sentence (a third of the local model's answers did).
    """

    def __init__(self) -> None:
        self.name = ""
        self.finish_reason = ""

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                metadata = getattr(message, "response_metadata", None) or generation.generation_info or {}
                self.name = str(metadata.get("model_name") or self.name)
                self.finish_reason = str(metadata.get("finish_reason") or self.finish_reason)


class AnswerStopped(BaseException):  # noqa: N818 - a request honoured, not an error
    """The reader asked to stop while the model was writing (see `StopWhenSet`).

    A BaseException, like GeneratorExit: LangChain's callback manager logs an Exception
    from a handler as a warning before passing it on, and no `except Exception` on the way
    out of the model's stream should take a stop for a failure.
    """


class StopWhenSet(BaseCallbackHandler):
    """Ends a model's streamed reply at its next token once `event` is set.

    Closing a LangChain stream does not stop the model: the sync stream, when closed, reads
    the rest of its input for tracing, so the whole reply is generated (and, with the local
    model, holds the CPU) for no one. Raised from the token callback, `AnswerStopped` instead
    unwinds the model's own stream, which closes its HTTP response, and a llama.cpp or
    OpenAI server stops writing.
    """

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if self.event.is_set():
            raise AnswerStopped


# --- errors a user can act on ----------------------------------------------------------


def _request_url(exc: BaseException) -> object:
    """The URL of the failed request, if the error carries one (httpx raises if it doesn't)."""
    try:
        return exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return None


def _server(url: object, settings: Settings | None) -> tuple[str, str]:
    """(who, where) for messages: 'OpenAI' for api.openai.com, else the server's address."""
    text = str(url or (base_url(settings) if settings else ""))
    parts = urlsplit(text)
    if parts.hostname and parts.hostname.endswith("openai.com"):
        return "OpenAI", text
    if settings is not None and uses_local_model(settings):
        return "The local model server", text
    where = f"{parts.scheme}://{parts.netloc}" if parts.netloc else text
    return (f"The model server at {where}" if where else "The model server"), text


def _server_message(exc: openai.APIStatusError, limit: int = 200) -> str:
    body = exc.body
    message = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = str(inner.get("message", "")) if isinstance(inner, dict) else str(inner)
    message = " ".join((message or exc.message or "").split())
    return message[:limit] + ("…" if len(message) > limit else "")


def _find(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe_error(exc: BaseException, settings: Settings | None = None) -> str:
    """Turn a model-call failure into one sentence that says what is wrong and what to do.

    Never includes a traceback or the API key. Pass `settings` for messages that name the
    configured server, model and timeout.
    """
    found = _find(exc, (openai.OpenAIError, httpx.HTTPError, local_llm.LocalLLMError))
    if found is None:
        return (
            f"Something went wrong while answering ({type(exc).__name__}): {exc}. The server log has details."
        )
    if isinstance(found, local_llm.LocalLLMError):
        return str(found)
    model = model_name(settings) if settings else "the configured model"
    timeout = f"{settings.llm_timeout:g} s" if settings else "the time limit"
    if isinstance(found, openai.APIStatusError):
        who, where = _server(_request_url(found), settings)
        said = _server_message(found)
        status = found.status_code
        if isinstance(found, openai.AuthenticationError):
            return f"{who} refused the API key ({status}): check OPENAI_API_KEY in .env."
        if isinstance(found, openai.PermissionDeniedError):
            return (
                f"{who} denied access ({status}): this API key may not be allowed to use model "
                f"'{model}'. Check OPENAI_API_KEY and OPENAI_MODEL in .env. It said: {said}"
            )
        if isinstance(found, openai.NotFoundError):
            if "model" in said.lower() or not said:
                return (
                    f"{who} doesn't know the model '{model}' ({status}): set OPENAI_MODEL in .env to a "
                    f"model it serves. It said: {said or 'not found'}"
                )
            return (
                f"{who} has no such endpoint ({status} for {where}): check OPENAI_BASE_URL in .env "
                f"(it usually ends in /v1). It said: {said}"
            )
        if isinstance(found, openai.RateLimitError):
            return (
                f"{who} is rate-limiting this key or its quota is used up ({status}): wait a minute and "
                f"ask again, or check the account's billing. It said: {said}"
            )
        if isinstance(found, openai.BadRequestError):
            if "context" in said.lower() and ("length" in said.lower() or "exceed" in said.lower()):
                return (
                    f"The question and the doc excerpts are too long for model '{model}' ({status}): "
                    "lower CONTEXT_MAX_CHARS or RETRIEVAL_K, or use a model with a larger context. "
                    f"It said: {said}"
                )
            return f"{who} rejected the request ({status}) for model '{model}'. It said: {said}"
        if status >= 500:
            return f"{who} failed ({status}); this is usually temporary, so try again. It said: {said}"
        return f"{who} answered with an error ({status}). It said: {said}"
    if isinstance(found, (openai.APITimeoutError, httpx.TimeoutException)):
        who, _ = _server(_request_url(found), settings)
        return (
            f"{who} did not answer within {timeout} (LLM_TIMEOUT): it may be overloaded or the model "
            "too slow for this machine. Try again, or raise LLM_TIMEOUT."
        )
    if isinstance(found, (openai.APIConnectionError, httpx.TransportError)):
        who, where = _server(_request_url(found), settings)
        if settings is not None and uses_local_model(settings):
            # The app restarts the model it started (`local_llm.keep_running`); a chat user can wait.
            return (
                "The local model isn't answering right now. The app restarts it by itself: ask again in "
                "a few seconds. If it keeps failing, restart the app (`make run`); the model's log is "
                f"{local_llm.log_file(settings)}."
            )
        return (
            f"{who} can't be reached ({where}): check OPENAI_BASE_URL in .env and that the server is running."
        )
    return f"The model call failed ({type(found).__name__}): {found}"


def log_error(exc: BaseException, settings: Settings | None = None) -> str:
    """Log the full error for the operator and return the user-facing sentence."""
    message = describe_error(exc, settings)
    log.error("model call failed: %s", message, exc_info=exc)
    return message
