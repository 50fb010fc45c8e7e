"""Test helpers for the answer tests: a handful of doc chunks and a keyword retriever over them.

The lead's real retriever is tested elsewhere; the chain only needs `search(query)`.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage
from pydantic import Field

from qa.types import RetrievalResult


def chunk(source: str, section: str, text: str) -> Document:
    anchor = section.split(" > ")[-1].lower().replace(" ", "-")
    return Document(
        page_content=text,
        metadata={
            "source": source,
            "title": section.split(" > ")[0],
            "section": section,
            "anchor": anchor,
            "url": f"https://github.com/example/docs/blob/abc123/{source}#{anchor}",
            "commit": "abc123",
        },
    )


DOCS = [
    chunk(
        "docs/start.md",
        "Start Label Studio > Command line arguments",
        "| `-b`, `--no-browser` | N/A | `False` | Do not automatically open a web browser when starting. |\n"
        "| `--port` | `LABEL_STUDIO_PORT` | `8080` | Port to serve the app on. |",
    ),
    chunk(
        "docs/webhooks.md",
        "Webhooks > Troubleshoot a webhook connection",
        "Webhook connections time out after 1 second. You can adjust the timeout by setting the "
        "environment variable `WEBHOOK_TIMEOUT`. Label Studio does not retry webhook connections that fail.",
    ),
    chunk(
        "docs/security.md",
        "Security > Information collected",
        "Label Studio collects usage statistics. You can disable data collection by setting the "
        "environment variable `COLLECT_ANALYTICS` to `False`.",
    ),
    chunk(
        "docs/install.md",
        "Install > Install with Docker",
        "Run the Docker image and publish port 8080. The default port can be changed with `--port`.",
    ),
]

_STOP = {"the", "a", "an", "how", "do", "i", "to", "of", "and", "is", "can", "my", "what", "it", "on", "in"}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9_]+", text.lower()) if w not in _STOP}


class KeywordRetriever:
    """Ranks chunks by shared words with the query; abstains when nothing shares a word."""

    def __init__(self, documents: list[Document], k: int = 3) -> None:
        self.documents = documents
        self.k = k
        self.queries: list[str] = []

    def search(self, query: str) -> RetrievalResult:
        self.queries.append(query)
        wanted = words(query)
        scored = sorted(
            (
                (len(wanted & words(d.page_content + " " + d.metadata["section"])), i)
                for i, d in enumerate(self.documents)
            ),
            key=lambda item: (-item[0], item[1]),
        )
        hits = []
        for score, i in scored[: self.k]:
            doc = self.documents[i]
            hits.append(
                Document(page_content=doc.page_content, metadata={**doc.metadata, "score": float(score)})
            )
        best = scored[0][0] if scored else 0
        return RetrievalResult(query=query, documents=hits, abstain=best == 0, confidence=min(best / 3, 1.0))


class RecordingFakeChat(GenericFakeChatModel):
    """langchain-core's fake chat model, also keeping every prompt it was sent."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        self.prompts.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def fake_chat(*replies: str) -> RecordingFakeChat:
    """A fake model that gives `replies` in order (and fails loudly if called once more)."""
    return RecordingFakeChat(messages=iter(replies))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeOpenAIServer:
    """A real HTTP server on 127.0.0.1 that answers every request with one canned reply.

    Besides a whole JSON reply (`complete`, `reply`), it can stream like OpenAI and llama.cpp
    do (`stream`: server-sent events in chunked encoding, optionally slow or cut off), or
    answer like a web server that is no model API at all (`html`).
    """

    def __init__(self) -> None:
        self.status = 200
        self.body: dict = {}
        self.delay = 0.0
        self.requests: list[dict] = []
        self.html_page = ""  # set: every request gets this page as text/html, with `status`
        self.pieces: list[str] | None = None  # set: a streamed request gets these as SSE chunks
        self.piece_delay = 0.0
        self.drop_after: int | None = None  # cut the connection after this many pieces
        self.finish = "stop"  # the streamed reply's finish reason
        self.model = "m"
        self.keepalive = 0.0  # set: never answer, but send a keep-alive every this many seconds
        self.dimensions = 0  # set: /embeddings answers with vectors this long (from the words of each input)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked streams, as uvicorn and OpenAI send them

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                sent = json.loads(self.rfile.read(length) or b"{}") if length else {}
                server.requests.append(
                    {"path": self.path, "authorization": self.headers.get("authorization", ""), "json": sent}
                )
                time.sleep(server.delay)
                try:
                    if server.keepalive:
                        self._keep_alive(bool(sent.get("stream")))
                    elif server.dimensions and self.path.endswith("/embeddings"):
                        self._embed(sent)
                    elif server.html_page:
                        self._send(server.status, server.html_page.encode(), "text/html; charset=utf-8")
                    elif server.pieces is not None and sent.get("stream"):
                        self._stream(server.pieces)
                    else:
                        self._send(server.status, json.dumps(server.body).encode(), "application/json")
                except OSError:  # the client gave up (timeout test)
                    pass

            do_GET = do_POST  # noqa: N815

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _event(self, delta: dict, finish: str | None = None) -> None:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                event = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": server.model}
                self._chunk(f"data: {json.dumps({**event, 'choices': [choice]})}\n\n".encode())

            def _stream(self, pieces: list[str]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self._event({"role": "assistant", "content": ""})
                for n, piece in enumerate(pieces):
                    if server.drop_after is not None and n == server.drop_after:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)  # mid-answer, no end chunk
                        return
                    self._event({"content": piece})
                    time.sleep(server.piece_delay)
                self._event({}, server.finish)
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _embed(self, sent: dict) -> None:
                """Vectors like an embeddings endpoint: texts sharing words get close vectors."""
                inputs = sent.get("input", [])
                data = []
                for n, text in enumerate([inputs] if isinstance(inputs, str) else inputs):
                    if not isinstance(text, str):  # token ids: Ollama and vLLM take only text
                        message = "invalid input type: expected a string or a list of strings"
                        self._send(
                            400, json.dumps({"error": {"message": message}}).encode(), "application/json"
                        )
                        return
                    vector = [0.0] * server.dimensions
                    for word in words(text) or {"empty"}:
                        vector[zlib.crc32(word.encode()) % server.dimensions] += 1.0
                    data.append({"object": "embedding", "index": n, "embedding": vector})
                body = {"object": "list", "data": data, "model": sent.get("model", "")}
                self._send(200, json.dumps(body).encode(), "application/json")

            def _keep_alive(self, streamed: bool) -> None:
                """What proxies do while a model is queued: SSE comments, or whitespace before the JSON."""
                self.send_response(200)
                self.send_header("content-type", "text/event-stream" if streamed else "application/json")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                while True:  # until the client gives up (OSError)
                    self._chunk(b": keep-alive\n\n" if streamed else b"\n")
                    time.sleep(server.keepalive)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *args: None  # a client that hung up (the tests' timeouts)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def complete(self, content: str | None, model: str = "m") -> None:
        """Answer each request with one whole chat completion saying `content`, as served by `model`.

        A streamed request gets the same JSON: a server that does not stream.
        """
        self.status, self.delay, self.model = 200, 0.0, model
        self.body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def stream(
        self,
        *pieces: str,
        delay: float = 0.0,
        drop_after: int | None = None,
        model: str = "m",
        finish: str = "stop",
    ) -> None:
        """Stream `pieces` to a streamed request (whole requests get them joined), `delay` s apart."""
        self.complete("".join(pieces), model)
        self.pieces, self.piece_delay, self.drop_after, self.finish = list(pieces), delay, drop_after, finish

    def embeddings(self, dimensions: int = 64) -> None:
        """Answer /embeddings requests with `dimensions`-long vectors (chat requests as before)."""
        self.dimensions = dimensions

    def html(
        self, page: str = "<!doctype html><html><body><h1>Welcome</h1></body></html>", status: int = 200
    ) -> None:
        """Answer every request with a web page (text/html): a base URL that is no model API, or a proxy's
        error page."""
        self.html_page, self.status = page, status

    def reply(self, status: int, message: str = "", code: str | None = None, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
