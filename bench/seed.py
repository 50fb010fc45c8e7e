"""The seed article's pipeline, the baseline our ingest and retrieval are measured against.

MarkdownTextSplitter(chunk_size=500, chunk_overlap=0) over every selected file,
one Chroma collection filled with `Chroma.from_documents`, top-k similarity
search, never abstains. Its embeddings are `SeedEmbeddings`: the same
all-MiniLM-L6-v2 weights, loaded once and shared with our pipeline, called the
way the article calls them (`SentenceTransformer.encode` on the raw chunk text).
By default in our precision (bfloat16 on AMX CPUs), so a comparison measures the
pipelines, not two precisions; `dtype="float32"` is the article's own set-up
(the issue's "~240–390 s"). What our pipeline does on top — embedding a chunk's
words without markup, in 126-token windows — is part of what is measured.

Used by bench/ingest.py and bench/retrieval.py; all its state lives in the
directory it is given (a temp dir).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from langchain_core.embeddings import Embeddings  # noqa: E402

from qa.embeddings import LOCAL_MODEL_NAME, load_sentence_transformer  # noqa: E402
from qa.repo import checkout  # noqa: E402
from qa.types import RetrievalResult  # noqa: E402

BUNDLE = ROOT.parent / "shared" / "corpora" / "label-studio-docs.bundle"
SEED_CHUNK_SIZE = 500
SEED_COLLECTION = "seed"


class SeedEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 as the seed article uses it: `encode` on the chunk text as it is."""

    def __init__(self, dtype: str = "auto", batch_size: int = 32) -> None:
        self.dtype, self.batch_size = dtype, batch_size  # 32: sentence-transformers' default
        self.name = f"local:{LOCAL_MODEL_NAME} (seed, {dtype})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        model = load_sentence_transformer(self.dtype)
        return model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class TimedEmbeddings(Embeddings):
    """Passes calls through and adds up the seconds spent embedding documents (and how many)."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.seconds = 0.0
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - started
        self.texts += len(texts)
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@dataclass
class SeedBuild:
    """A built seed index and where its time went."""

    vectorstore: object
    chunks: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # checkout, split, embed, chroma


def build_seed(
    workdir: Path, embeddings: Embeddings, repo: str = str(BUNDLE), ref: str = "docs-2026-03"
) -> SeedBuild:
    """Clone `repo`@`ref` into `workdir`, split every Markdown file, embed and store it."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_text_splitters import MarkdownTextSplitter

    started = time.perf_counter()
    co = checkout(repo, ref, workdir / "repo", ["**/*.md"])
    t_checkout = time.perf_counter()
    splitter = MarkdownTextSplitter(chunk_size=SEED_CHUNK_SIZE, chunk_overlap=0)
    texts, metas = [], []
    for f in co.files:
        try:
            text = (co.root / f.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for piece in splitter.split_text(text):
            texts.append(piece)
            metas.append({"source": f.path})
    t_split = time.perf_counter()
    timed = TimedEmbeddings(embeddings)
    client = chromadb.PersistentClient(
        path=str(workdir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    vectorstore = Chroma.from_texts(
        texts, timed, metadatas=metas, collection_name=SEED_COLLECTION, client=client
    )
    done = time.perf_counter()
    return SeedBuild(
        vectorstore=vectorstore,
        chunks=len(texts),
        seconds=done - started,
        phases={
            "checkout": t_checkout - started,
            "split": t_split - t_checkout,
            "embed": timed.seconds,
            "chroma": done - t_split - timed.seconds,
        },
    )


def seed_search(vectorstore, query: str, k: int = 5) -> RetrievalResult:  # noqa: ANN001 - a langchain Chroma
    """Top-k similarity, as in the article: no lexical side, no abstaining."""
    started = time.perf_counter()
    docs = vectorstore.similarity_search(query, k=k)
    return RetrievalResult(query=query, documents=docs, abstain=False, seconds=time.perf_counter() - started)


__all__ = ["BUNDLE", "SeedBuild", "SeedEmbeddings", "TimedEmbeddings", "build_seed", "seed_search"]
