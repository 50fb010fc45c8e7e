"""Test helpers for the answer tests: a handful of doc chunks and a keyword retriever over them.

The lead's real retriever is tested elsewhere; the chain only needs `search(query)`.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
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
    """A real HTTP server on 127.0.0.1 that answers every request with one canned reply."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict = {}
        self.delay = 0.0
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                server.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("authorization", ""),
                        "json": json.loads(self.rfile.read(length) or b"{}"),
                    }
                )
                time.sleep(server.delay)
                payload = json.dumps(server.body).encode()
                try:
                    self.send_response(server.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout test)
                    pass

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def complete(self, content: str, model: str = "m") -> None:
        """Answer each request with one whole chat completion saying `content`, as served by `model`."""
        self.status, self.delay = 200, 0.0
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

    def reply(self, status: int, message: str = "", code: str | None = None, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
