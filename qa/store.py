"""The persistent index under DATA_DIR/index: Chroma vectors, LangChain's record manager, state.

- `chroma/`: the Chroma collection of chunks and of their table rows (`kind: row`), with embeddings;
- `records.sqlite`: LangChain's SQLRecordManager, which the indexing API uses
  to skip unchanged chunks and delete stale ones (incremental sync);
- `state.json`: the commit, repo, embedding model and file → blob map of the
  last completed ingest (written last, so a killed run leaves the old one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from qa.embeddings import embedding_name

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
log = logging.getLogger(__name__)

COLLECTION = "docs"
# Metadata that changes with the commit but not with the text: kept out of the
# chunk key, so a new commit does not re-embed unchanged chunks.
VOLATILE_KEYS = ("commit", "url")
UPDATE_BATCH = 1000  # metadata rows per Chroma update call (Chroma caps a batch at a few thousand)
# Chroma's clients share one System per path; opening and closing them is serialized here so a
# close that stops the last one never races an open that is about to reuse it.
_CLIENTS_LOCK = threading.RLock()


class StoreError(RuntimeError):
    """The index cannot be used as asked; the message says what to do."""


@dataclass
class IndexState:
    repo: str = ""
    ref: str = ""
    commit: str = ""
    embedding_model: str = ""
    files: dict[str, str] = field(default_factory=dict)  # path -> git blob sha
    chunks: int = 0
    updated_at: str = ""
    globs: list[str] = field(default_factory=list)  # the file selection it was built from
    web_base: str | None = None  # the base of the chunks' links ("": none); None: not recorded
    docs_web_base: str = ""  # the DOCS_WEB_BASE it was built with ("": none, the remote's links)


def file_stamp(path: Path) -> tuple[int, ...]:
    """Which file is at `path` (inode, mtime, size), to notice it was replaced or changed; () if none."""
    try:
        st = path.stat()
    except OSError:
        return ()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@contextmanager
def store_failures(index_dir: Path) -> Iterator[None]:
    """Turn Chroma's failures inside the block into a StoreError that names the fix.

    A store an ingest killed mid-write can leave damaged makes Chroma raise its own
    errors, or its Rust core panic (a BaseException, which `except Exception` misses).
    Either way the user needs the same sentence: rebuild with `--reset`.
    """
    from chromadb.errors import ChromaError

    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, ChromaError) and type(exc).__name__ != "PanicException":
            raise
        said = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise StoreError(
            f"The docs index in {index_dir} is damaged (Chroma: {said[:200]}). An ingest killed while "
            "writing can leave it so: run `python ingest.py --reset` to rebuild it (the feedback log "
            "and Label Studio are not touched)."
        ) from exc


def _forget_unused_system(path: str) -> None:
    """Drop Chroma's cached System for `path` if no client holds it.

    A System whose start failed (a damaged store) stays in Chroma's per-path cache,
    half built: every later client on the path would reuse it and fail, even once the
    store is readable again. Forgetting it makes the next open start a new one.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    with SharedSystemClient._refcount_lock:
        if not SharedSystemClient._identifier_to_refcount.get(path):
            SharedSystemClient._identifier_to_system.pop(path, None)


def chunk_key(doc: Document) -> str:
    """The record-manager key: the chunk's text and stable metadata."""
    stable = {k: v for k, v in sorted(doc.metadata.items()) if k not in VOLATILE_KEYS}
    payload = json.dumps({"text": doc.page_content, "meta": stable}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class DocStore:
    """Opens the pieces of the index; knows nothing of git or of answering."""

    def __init__(self, index_dir: Path) -> None:
        self.dir = Path(index_dir)

    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def exists(self) -> bool:
        return self.state_path.exists()

    def state_stamp(self) -> tuple[int, ...]:
        """Which state file is there: ingest replaces it (a new inode) when it finishes; () if none."""
        return file_stamp(self.state_path)

    def read_state(self) -> IndexState:
        if not self.state_path.exists():
            return IndexState()
        try:
            return IndexState(**json.loads(self.state_path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise StoreError(
                f"The index state {self.state_path} is unreadable ({exc}); re-run `python ingest.py --reset`."
            ) from exc

    def write_state(self, state: IndexState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.state_path)  # atomic: readers see the old or the new state

    def check_model(self, embeddings: Embeddings) -> None:
        """Refuse to mix vectors of two models in one store."""
        built_with = self.read_state().embedding_model or self._collection_model()
        wanted = embedding_name(embeddings)
        if built_with and built_with != wanted:
            raise StoreError(
                f"The index in {self.dir} was built with the embedding model {built_with!r}, "
                f"but the settings ask for {wanted!r}. Re-run `python ingest.py --reset` to rebuild it "
                "with the new model (or set EMBEDDINGS back)."
            )

    def _collection_model(self) -> str:
        if not (self.dir / "chroma").exists():
            return ""
        try:
            with self.client() as client:
                return str((client.get_collection(COLLECTION).metadata or {}).get("embedding_model", ""))
        except Exception:
            return ""

    @contextmanager
    def client(self) -> Iterator:
        """A Chroma client on the store, closed when the block ends.

        Chroma keeps one System per path for the whole process, and that System caches
        what it has read: it never sees what another process (`python ingest.py` beside
        the app) wrote since, and reading the new ids through it fails ("Error finding
        id"). Closing every client releases the System once nobody in this process
        uses it, so the next open reads the store from disk afresh. While an ingest in
        this process holds one, a reader shares it, and that System has seen the writes.
        """
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.dir.mkdir(parents=True, exist_ok=True)
        path = str(self.dir / "chroma")
        with _CLIENTS_LOCK:
            try:
                client = chromadb.PersistentClient(
                    path=path, settings=ChromaSettings(anonymized_telemetry=False)
                )
            except BaseException:
                _forget_unused_system(path)
                raise
        try:
            yield client
        finally:
            with _CLIENTS_LOCK:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - stopping a System that never started: nothing to free
                    log.debug("closing the Chroma client on %s failed", path, exc_info=True)
                    _forget_unused_system(path)

    @contextmanager
    def vectorstore(self, embeddings: Embeddings) -> Iterator:
        """LangChain's Chroma over the collection (created if missing), for an ingest's writes."""
        from langchain_chroma import Chroma

        with self.client() as client:
            yield Chroma(
                collection_name=COLLECTION,
                embedding_function=embeddings,
                client=client,
                collection_metadata={"hnsw:space": "cosine", "embedding_model": embedding_name(embeddings)},
            )

    def update_metadatas(self, ids: Sequence[str], metadatas: Sequence[dict]) -> None:
        """Replace stored documents' metadata in place: no text changes, so nothing is embedded again."""
        with self.client() as client:
            collection = client.get_collection(COLLECTION)
            for start in range(0, len(ids), UPDATE_BATCH):
                collection.update(
                    ids=list(ids[start : start + UPDATE_BATCH]),
                    metadatas=list(metadatas[start : start + UPDATE_BATCH]),
                )

    def record_manager(self):
        from langchain_classic.indexes import SQLRecordManager

        self.dir.mkdir(parents=True, exist_ok=True)
        manager = SQLRecordManager(f"chroma/{COLLECTION}", db_url=f"sqlite:///{self.dir / 'records.sqlite'}")
        manager.create_schema()
        return manager

    def _read(self, *, vectors: bool) -> dict:
        """The collection's ids, texts and metadata (and embeddings); empty when there is none yet."""
        if not (self.dir / "chroma").exists():
            return {}
        with self.client() as client:
            try:
                collection = client.get_collection(COLLECTION)
            except Exception:  # noqa: BLE001 - no collection yet: an empty index
                return {}
            return collection.get(include=["documents", "metadatas", *(["embeddings"] if vectors else [])])

    @staticmethod
    def _documents(got: dict) -> list[Document]:
        return [
            Document(id=i, page_content=text or "", metadata=dict(meta or {}))
            for i, text, meta in zip(
                got.get("ids", []), got.get("documents", []), got.get("metadatas", []), strict=True
            )
        ]

    def all_documents(self) -> list[Document]:
        """Every stored document (chunks, and the table rows that point at them), without vectors."""
        return self._documents(self._read(vectors=False))

    def documents_and_vectors(self) -> tuple[list[Document], np.ndarray]:
        """Every stored document and its unit-length vector (cosine = dot product)."""
        got = self._read(vectors=True)
        docs = self._documents(got)
        embeddings = got.get("embeddings")
        if embeddings is None or len(docs) == 0:
            return docs, np.zeros((len(docs), 0), dtype=np.float32)
        vectors = np.asarray(embeddings, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return docs, vectors / np.maximum(norms, 1e-12)

    def documents_of(self, vectorstore, source: str) -> list[Document]:
        got = vectorstore.get(where={"source": source}, include=["documents", "metadatas"])
        return [
            Document(page_content=t, metadata=dict(m))
            for t, m in zip(got["documents"], got["metadatas"], strict=True)
        ]

    def reset(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
