"""Hybrid retrieval: BM25 (exact identifiers) + dense MiniLM (meaning), fused by rank.

Dense vectors blur env var names, CLI flags and tag names; BM25 finds them
verbatim. Reciprocal-rank fusion needs no score calibration between the two.
The same search decides whether to abstain: when even the best passage is a
weak match, the docs most likely do not cover the question.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Sequence

import bm25s
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from qa.store import DocStore
from qa.types import RetrievalResult

RRF_K = 60  # the usual reciprocal-rank-fusion constant
TOKEN_PATTERN = r"(?u)[\w][\w.\-/:]*[\w]|\w"  # keeps LABEL_STUDIO_X, no-browser, dbx:// stems, v1.2


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased tokens; identifiers with _ . - / : are kept whole and also split into parts."""
    out = []
    for text in texts:
        tokens = []
        for tok in re.findall(TOKEN_PATTERN, text.lower()):
            tokens.append(tok)
            parts = re.split(r"[\W_]+", tok)
            if len(parts) > 1:
                tokens.extend(p for p in parts if len(p) > 1)
        out.append([t for t in tokens if t not in STOPWORDS])
    return out


STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from how i if in into is it its me my of on or our "
    "so that the their then there these this to was we what when where which who why will with you your "
    "any there's i'm it's don't can't".split()
)


class HybridRetriever(BaseRetriever):
    """A LangChain retriever over the ingested store; `search` also returns the abstain verdict."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: DocStore
    embeddings: Embeddings
    k: int = 5
    fetch_k: int = 40
    max_per_file: int = 2
    abstain_threshold: float = 0.0
    _docs: list[Document] = PrivateAttr(default_factory=list)
    _bm25: bm25s.BM25 | None = PrivateAttr(default=None)
    _vectorstore: object = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def load(self) -> HybridRetriever:
        """Build the lexical index from the stored chunks (about a second for 4k chunks)."""
        with self._lock:
            docs = self.store.all_documents()
            bm25 = bm25s.BM25()
            if docs:
                bm25.index(tokenize([d.page_content for d in docs]), show_progress=False)
            self._docs, self._bm25 = docs, bm25
            self._vectorstore = self.store.vectorstore(self.embeddings)
        return self

    @property
    def size(self) -> int:
        return len(self._docs)

    def _lexical(self, query: str, n: int) -> list[tuple[int, float]]:
        tokens = tokenize([query])
        if not self._docs or not tokens[0]:
            return []
        ids, scores = self._bm25.retrieve(tokens, k=min(n, len(self._docs)), show_progress=False)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]

    def _dense(self, query: str, n: int) -> list[tuple[Document, float]]:
        hits = self._vectorstore.similarity_search_with_score(query, k=min(n, max(1, len(self._docs))))
        return [(doc, 1.0 - float(distance)) for doc, distance in hits]  # cosine distance → similarity

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        """Top-k chunks for `query`, at most `max_per_file` per file, and whether to abstain."""
        k = k or self.k
        if self._bm25 is None:
            self.load()
        started = time.perf_counter()
        key_of = {d.id: i for i, d in enumerate(self._docs)}
        fused: dict[int, float] = defaultdict(float)
        dense_sim: dict[int, float] = {}
        for rank, (doc, sim) in enumerate(self._dense(query, self.fetch_k)):
            idx = key_of.get(doc.id)
            if idx is None:
                continue
            fused[idx] += 1.0 / (RRF_K + rank + 1)
            dense_sim[idx] = sim
        for rank, (idx, _score) in enumerate(self._lexical(query, self.fetch_k)):
            fused[idx] += 1.0 / (RRF_K + rank + 1)
        ranked = sorted(fused, key=fused.__getitem__, reverse=True)
        picked: list[Document] = []
        per_file: dict[str, int] = defaultdict(int)
        for idx in ranked:
            doc = self._docs[idx]
            source = str(doc.metadata.get("source", ""))
            if per_file[source] >= self.max_per_file:
                continue
            per_file[source] += 1
            meta = dict(doc.metadata, score=round(fused[idx], 5), dense=round(dense_sim.get(idx, 0.0), 4))
            picked.append(Document(id=doc.id, page_content=doc.page_content, metadata=meta))
            if len(picked) == k:
                break
        confidence = max(dense_sim.values(), default=0.0)
        abstain = not picked or confidence < self.abstain_threshold
        return RetrievalResult(
            query=query,
            documents=picked,
            abstain=abstain,
            confidence=float(confidence),
            seconds=time.perf_counter() - started,
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.search(query).documents


def open_retriever(settings, embeddings: Embeddings | None = None) -> HybridRetriever:  # noqa: ANN001
    """The retriever over the settings' store, with the store's embedding model checked."""
    from qa.embeddings import make_embeddings

    embeddings = embeddings or make_embeddings(settings)
    store = DocStore(settings.index_dir)
    store.check_model(embeddings)
    return HybridRetriever(
        store=store,
        embeddings=embeddings,
        k=settings.retrieval_k,
        abstain_threshold=settings.abstain_threshold,
    ).load()


__all__ = ["HybridRetriever", "open_retriever", "tokenize"]
