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

import html
import importlib
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Iterator
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
# LLM_TIMEOUT bounds each wait for a byte, so a server that sends keep-alives (": keep-alive"
# comments, or blank lines before its JSON) while it never answers, or a reply that trickles,
# held a chat, a pre-rating or an ingest for ever. A whole reply may take this many LLM_TIMEOUTs
# (5 min by default): a 512-token answer at 5 tokens/s on a CPU takes under 2.
REPLY_TIME_FACTOR = 5
MAX_RETRIES = 1  # once more (a dropped connection, a busy server), then a clear message: a user is waiting


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
        return settings.openai_base_url.strip().rstrip("/")
    return "https://api.openai.com/v1"


def base_url_problem(settings: Settings) -> str:
    """What is wrong with OPENAI_BASE_URL as written ('' when it can be used).

    Without a scheme ("127.0.0.1:11434/v1") the client joins it to itself and fails with a
    connection error naming a garbled address, which says nothing of the missing "http://".
    """
    url = settings.openai_base_url.strip()
    if not url or uses_local_model(settings):
        return ""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return ""
    bare = url.split("://", 1)[-1]
    return (
        f"OPENAI_BASE_URL={url!r} is not a web address: write it with http:// (or https://) in front, "
        f"e.g. OPENAI_BASE_URL=http://{bare}."
    )


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

    `overrides` go straight to `ChatOpenAI` (tests use `max_tokens=...`). Its HTTP client
    checks each reply (`guarded_http_client`): a web page, or an error sent with status 200,
    is named as such, a server that ignores streaming is read all the same, and no reply
    takes longer than REPLY_TIME_FACTOR × its timeout.
    """
    local = uses_local_model(settings)
    timeout = float(overrides.get("timeout", settings.llm_timeout))  # type: ignore[arg-type]
    options: dict[str, object] = {
        "model": model_name(settings),
        "api_key": settings.openai_api_key or LOCAL_API_KEY,
        "base_url": base_url(settings),  # explicit, so a stray OPENAI_API_BASE in the env is not used
        "streaming": True,
        "max_retries": MAX_RETRIES,
        "timeout": timeout,
        "temperature": settings.llm_temperature,
        "max_tokens": settings.local_llm_max_tokens if local else settings.llm_max_tokens,
        "http_client": guarded_http_client(timeout * REPLY_TIME_FACTOR),
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


# --- replies that are no chat completion, and replies that never end ----------------------


class ReplyError(RuntimeError):
    """The server's reply can't be used, or took too long; `describe_error` says what to do.

    `kind`: "page" (a web page, not the API), "error" (an error sent with status 200, as LM
    Studio does for an unknown path), "shape" (not the API's JSON), "slow" (still
    being sent after the reply's time limit). Not an httpx error on purpose: the OpenAI client
    would retry those, and for "slow" that doubles a wait already too long.
    """

    def __init__(self, kind: Literal["page", "error", "shape", "slow"], url: str, detail: str = "") -> None:
        super().__init__(f"{kind} reply from {url}: {detail}")
        self.kind, self.url, self.detail = kind, url, detail


# The SDK's HTTP library (httpx2 for openai>=3, httpx before): the stream class must be its own.
_SDK_HTTP = importlib.import_module(
    next(c for c in openai.DefaultHttpxClient.__mro__ if c.__name__ == "Client").__module__.split(".")[0]
)
_CHECKED_PATHS = ("/chat/completions", "/embeddings")
_STARTED = "docs_qa_started"  # the request's extension holding when it was sent


def _page_title(body: bytes) -> str:
    found = re.search(rb"<title[^>]*>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    text = found.group(1) if found else re.sub(rb"<[^>]+>", b" ", body)
    return " ".join(html.unescape(text.decode("utf-8", "replace")).split())[:80]


def _json_of(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or json.dumps(error)
    return " ".join(str(error).split())[:200]


def _opening(body: bytes) -> str:
    """A reply's first characters, for a message naming what it was instead of the API's JSON."""
    return " ".join(body[:120].decode("utf-8", "replace").split())


def _reply_object(body: bytes, url: str, *results: str) -> dict:
    """A whole reply's JSON object; ReplyError when it is none ("shape") or an error sent as a
    reply (status 200) that holds none of `results` ("error")."""
    data = _json_of(body)
    if not isinstance(data, dict):
        raise ReplyError("shape", url, _opening(body))
    if data.get("error") and not any(data.get(key) for key in results):
        raise ReplyError("error", url, _error_text(data["error"]))
    return data


def _as_events(body: bytes, url: str) -> bytes:
    """A whole chat completion, sent to a request that asked for a stream, as that stream.

    Some servers (and proxies) ignore `stream: true` and send the whole reply as JSON; the
    client, reading it as server-sent events, found no event in it and the chain failed with
    "No generation chunks were returned".
    """
    data = _reply_object(body, url, "choices")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise ReplyError("shape", url, _opening(body))
    chunk = {k: v for k, v in data.items() if k not in ("choices", "usage")}
    chunk["object"] = "chat.completion.chunk"
    chunk["choices"] = [
        {
            "index": choice.get("index", 0),
            "delta": {"role": "assistant", "content": (choice.get("message") or {}).get("content") or ""},
            "finish_reason": choice.get("finish_reason"),
        }
        for choice in choices
        if isinstance(choice, dict)
    ]
    return f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()


class _CheckedStream(_SDK_HTTP.SyncByteStream):  # type: ignore[misc,name-defined]
    """A reply's body, read with a time limit on the whole, and checked or turned into events."""

    def __init__(self, inner: Any, url: str, deadline: float, limit: float, mode: str) -> None:
        self.inner, self.url, self.deadline, self.limit, self.mode = inner, url, deadline, limit, mode

    def _timed(self) -> Iterator[bytes]:
        for part in self.inner:
            if time.monotonic() > self.deadline:
                raise ReplyError("slow", self.url, f"{self.limit:g}")
            yield part

    def __iter__(self) -> Iterator[bytes]:
        if self.mode == "pass":
            yield from self._timed()
            return
        body = b"".join(self._timed())
        if self.mode == "events":  # unless it is a stream after all, with the wrong content type
            yield (
                body if body.lstrip().startswith((b"data:", b":", b"event:")) else _as_events(body, self.url)
            )
            return
        _reply_object(body, self.url, "choices", "data")  # "check": a whole JSON reply, not an error
        yield body

    def close(self) -> None:
        self.inner.close()


def _stamp(request: Any) -> None:
    request.extensions[_STARTED] = time.monotonic()


def _checker(limit: float) -> Any:
    def check(response: Any) -> None:
        request = response.request
        url = str(request.url)
        if not url.split("?", 1)[0].rstrip("/").endswith(_CHECKED_PATHS) or response.status_code >= 300:
            return  # an error status: the client reads and names it (describe_error)
        kind = response.headers.get("content-type", "").lower()
        if "html" in kind:
            head = b""
            for part in response.iter_raw():
                head += part
                if len(head) > 65536:
                    break
            response.close()
            raise ReplyError("page", url, _page_title(head))
        body = _json_of(request.content) if request.content else None
        streamed = isinstance(body, dict) and body.get("stream") is True
        mode = "events" if streamed and "json" in kind else "pass" if streamed else "check"
        started = request.extensions.get(_STARTED, time.monotonic())
        response.stream = _CheckedStream(response.stream, url, started + limit, limit, mode)

    return check


def guarded_http_client(limit: float) -> Any:
    """The OpenAI SDK's HTTP client with every model reply checked (`ReplyError`) and bounded.

    `limit`: seconds a whole reply may take, keep-alives and all (LLM_TIMEOUT bounds only
    each wait for a byte). Checked as its bytes arrive, so it ends within one LLM_TIMEOUT
    after the limit.
    """
    return openai.DefaultHttpxClient(event_hooks={"request": [_stamp], "response": [_checker(limit)]})


# --- errors a user can act on ----------------------------------------------------------

# Both HTTP libraries' errors: the OpenAI SDK's (httpx2 for openai>=3) and httpx, which others use.
_HTTP_ERRORS: tuple[type[BaseException], ...] = tuple({httpx.HTTPError, _SDK_HTTP.HTTPError})
_TIMEOUTS: tuple[type[BaseException], ...] = tuple({httpx.TimeoutException, _SDK_HTTP.TimeoutException})
_TRANSPORT: tuple[type[BaseException], ...] = tuple({httpx.TransportError, _SDK_HTTP.TransportError})
_CUT_OFF: tuple[type[BaseException], ...] = tuple({httpx.RemoteProtocolError, _SDK_HTTP.RemoteProtocolError})
NO_CHUNKS = "No generation chunks were returned"  # LangChain's ValueError for a reply with no text


def _request(exc: BaseException) -> Any:
    """The failed request, if the error carries one (httpx raises if it doesn't)."""
    try:
        return exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return None


def _request_url(exc: BaseException) -> object:
    """The URL of the failed request, if the error carries one."""
    request = _request(exc)
    return getattr(request, "url", None) if request is not None else None


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


def asked_model(exc: BaseException | None, settings: Settings | None) -> tuple[str, str]:
    """(model, the setting that names it) of the failed request.

    The judge asks PRE_RATE_MODEL, the reviser REVISE_MODEL, ingest OPENAI_EMBEDDINGS_MODEL:
    a message naming OPENAI_MODEL for their failures sent the user to the wrong line of .env.
    """
    request = _request(exc) if exc is not None else None
    body = _json_of(getattr(request, "content", b"") or b"") if request is not None else None
    model = str(body.get("model", "")) if isinstance(body, dict) else ""
    path = urlsplit(str(getattr(request, "url", ""))).path.rstrip("/")
    if settings is None:
        return model or "the configured model", "OPENAI_MODEL"
    if path.endswith("/embeddings"):
        return model or settings.openai_embeddings_model, "OPENAI_EMBEDDINGS_MODEL"
    if uses_local_model(settings):
        return model or model_name(settings), "LOCAL_LLM_MODEL"
    for setting, value in (
        ("PRE_RATE_MODEL", settings.pre_rate_model),
        ("REVISE_MODEL", settings.revise_model),
    ):
        if model and model == value and value != settings.openai_model:
            return model, setting
    return model or settings.openai_model, "OPENAI_MODEL"


def _is_html(text: str) -> bool:
    return bool(re.match(r"\s*<(?:!doctype|html|head|body|\?xml)", text, re.IGNORECASE))


def _server_message(exc: openai.APIError, limit: int = 200) -> str:
    body = exc.body
    message = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = str(inner.get("message") or inner.get("detail") or "")
        else:
            message = str(inner)
    elif isinstance(body, str) and _is_html(body):  # a proxy's error page (nginx's 502, a 404 page)
        message = _page_title(body.encode())
    message = " ".join((message or exc.message or "").split())
    if _is_html(message.partition(" - ")[2]):
        message = _page_title(message.partition(" - ")[2].encode())
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


def _api_base_hint(settings: Settings | None) -> str:
    """What OPENAI_BASE_URL usually looks like, for messages about a wrong one."""
    current = (
        f" (it is {settings.openai_base_url.strip()!r})" if settings and settings.openai_base_url else ""
    )
    return (
        f"Set OPENAI_BASE_URL in .env to the server's API{current}: it usually ends in /v1, e.g. "
        "http://127.0.0.1:11434/v1 for Ollama, :1234/v1 for LM Studio, :8000/v1 for vLLM."
    )


def describe_empty(settings: Settings | None, model: str = "", finish_reason: str = "") -> str:
    """The sentence for a reply with no text in it (`AnswerChain` checks every answer)."""
    if settings is not None and uses_local_model(settings):
        return "The local model wrote nothing for this question: ask again, perhaps in other words."
    who, _ = _server(None, settings)
    name, setting = asked_model(None, settings)
    name = model or name
    if finish_reason == "length":
        return (
            f"{who} used the whole answer length (LLM_MAX_TOKENS) without writing any answer text with model "
            f"'{name}': a reasoning model may spend it thinking. Raise LLM_MAX_TOKENS in .env, or set {setting} "
            "to a model that answers directly."
        )
    return (
        f"{who} sent back an empty answer with model '{name}'. Ask again; if it keeps happening, set "
        f"{setting} in .env to a chat model it serves (not an embedding or a base model) and look at "
        "the server's log."
    )


def describe_error(exc: BaseException, settings: Settings | None = None, *, partial: bool = False) -> str:
    """Turn a model-call failure into one sentence that says what is wrong and what to do.

    Never includes a traceback or the API key. Pass `settings` for messages that name the
    configured server, model and timeout; `partial`: part of the answer had been shown.
    """
    if settings is not None and (problem := base_url_problem(settings)):
        return problem
    from qa.embeddings import EmbeddingModelError  # lazily: qa.embeddings wraps its errors with this module

    found = _find(exc, (ReplyError, EmbeddingModelError, local_llm.LocalLLMError)) or _find(
        exc, (openai.OpenAIError, *_HTTP_ERRORS)
    )
    if found is None:
        if isinstance(exc, ValueError) and NO_CHUNKS in str(exc):
            return describe_empty(settings)
        return (
            f"Something went wrong while answering ({type(exc).__name__}): {exc}. The server log has details."
        )
    if isinstance(found, (local_llm.LocalLLMError, EmbeddingModelError)):
        return str(found)
    model, setting = asked_model(found, settings)
    timeout = f"{settings.llm_timeout:g} s" if settings else "the time limit"
    if isinstance(found, ReplyError):
        who, _ = _server(found.url, settings)
        if found.kind == "slow":
            return (
                f"{who} was still sending its reply after {found.detail} s ({REPLY_TIME_FACTOR} × LLM_TIMEOUT): "
                "it may be overloaded, or sending keep-alives while it never answers. Try again, or raise "
                "LLM_TIMEOUT in .env."
            )
        if found.kind == "page":
            page = f' ("{found.detail}")' if found.detail else ""
            return f"{who} answered with a web page{page}, not the OpenAI API. {_api_base_hint(settings)}"
        if found.kind == "error":
            return (
                f"{who} answered with an error: {found.detail}. Check OPENAI_BASE_URL (it usually ends in "
                f"/v1) and {setting} ('{model}') in .env."
            )
        return (
            f"{who} sent a reply that is not the OpenAI API's (it began: {found.detail!r}). "
            f"{_api_base_hint(settings)}"
        )
    if isinstance(found, openai.APIStatusError):
        who, where = _server(_request_url(found), settings)
        said = _server_message(found)
        status = found.status_code
        embeddings = setting == "OPENAI_EMBEDDINGS_MODEL"
        if isinstance(found, openai.AuthenticationError):
            return f"{who} refused the API key ({status}): check OPENAI_API_KEY in .env."
        if isinstance(found, openai.PermissionDeniedError):
            return (
                f"{who} denied access ({status}): this API key may not be allowed to use model "
                f"'{model}'. Check OPENAI_API_KEY and {setting} in .env. It said: {said}"
            )
        if isinstance(found, openai.NotFoundError):
            if "model" in said.lower() or not said:
                return (
                    f"{who} doesn't know the model '{model}' ({status}): set {setting} in .env to a "
                    f"model it serves. It said: {said or 'not found'}"
                )
            if embeddings:
                return (
                    f"{who} has no embeddings endpoint ({status} for {where}): EMBEDDINGS=openai needs a "
                    "server that embeds (OpenAI, or Ollama or vLLM with an embedding model in "
                    "OPENAI_EMBEDDINGS_MODEL); or set EMBEDDINGS=local and run `python ingest.py --reset`. "
                    f"It said: {said}"
                )
            full = "/chat/completions" in urlsplit(base_url(settings)).path if settings else False
            hint = " without /chat/completions at the end" if full else " (it usually ends in /v1)"
            return (
                f"{who} has no such endpoint ({status} for {where}): check OPENAI_BASE_URL in .env{hint}. "
                f"It said: {said}"
            )
        if isinstance(found, openai.RateLimitError):
            if "quota" in said.lower() or found.code == "insufficient_quota":
                return (
                    f"{who} says this key's quota is used up ({status}): add credit to the account (for "
                    f"OpenAI, platform.openai.com › Billing) or use another OPENAI_API_KEY. It said: {said}"
                )
            return (
                f"{who} is rate-limiting this key ({status}): wait a minute and ask again, or check the "
                f"account's limits. It said: {said}"
            )
        if isinstance(found, openai.BadRequestError):
            if "context" in said.lower() and ("length" in said.lower() or "exceed" in said.lower()):
                return (
                    f"The question and the doc excerpts are too long for model '{model}' ({status}): "
                    "lower CONTEXT_MAX_CHARS or RETRIEVAL_K, or use a model with a larger context. "
                    f"It said: {said}"
                )
            return f"{who} rejected the request ({status}) for model '{model}' ({setting}). It said: {said}"
        if status >= 500:
            return f"{who} failed ({status}); this is usually temporary, so try again. It said: {said}"
        return f"{who} answered with an error ({status}). It said: {said}"
    who, where = _server(_request_url(found), settings)
    if isinstance(found, (openai.APITimeoutError, *_TIMEOUTS)):
        if partial:
            return (
                f"{who} stopped writing for more than {timeout} (LLM_TIMEOUT) in the middle of the answer: "
                "it may be overloaded. Ask again, or raise LLM_TIMEOUT."
            )
        return (
            f"{who} did not answer within {timeout} (LLM_TIMEOUT): it may be overloaded or the model "
            "too slow for this machine. Try again, or raise LLM_TIMEOUT."
        )
    if isinstance(found, (openai.APIConnectionError, *_TRANSPORT)):
        cut = _find(found, _CUT_OFF)
        if settings is not None and uses_local_model(settings):
            # The app restarts the model it started (`local_llm.keep_running`); a chat user can wait.
            return (
                "The local model isn't answering right now. The app restarts it by itself: ask again in "
                "a few seconds. If it keeps failing, restart the app (`make run`); the model's log is "
                f"{local_llm.log_file(settings)}."
            )
        if cut is not None and (partial or "complete message body" in str(cut)):
            return (
                f"{who} closed the connection in the middle of the answer: it may have crashed, run out of "
                "memory or been restarted. Ask again; if it keeps happening, look at the server's log."
            )
        if cut is not None:
            return (
                f"{who} closed the connection without answering ({where}): check that OPENAI_BASE_URL "
                "points at an OpenAI-compatible API (http:// or https:// as the server expects) and look at "
                "the server's log."
            )
        tls = _find(found, (ssl.SSLError,)) is not None or "SSL" in str(found.__cause__ or "")
        if tls and urlsplit(str(where)).scheme == "https":
            return (
                f"{who} can't be reached over https ({where}): the TLS handshake failed. If the server speaks "
                "plain HTTP (Ollama, LM Studio and vLLM do unless set up otherwise), write OPENAI_BASE_URL "
                "with http://."
            )
        return (
            f"{who} can't be reached ({where}): check OPENAI_BASE_URL in .env and that the server is running."
        )
    if isinstance(found, openai.APIError):  # an error event in the stream (vLLM, llama.cpp, proxies)
        return (
            f"{who} reported an error {'in the middle of the answer' if partial else 'instead of answering'}"
            f": {_server_message(found)}. Try again; if it keeps happening, look at the server's log."
        )
    return f"The model call failed ({type(found).__name__}): {found}"


def log_error(exc: BaseException, settings: Settings | None = None) -> str:
    """Log the full error for the operator and return the user-facing sentence."""
    message = describe_error(exc, settings)
    log.error("model call failed: %s", message, exc_info=exc)
    return message
