"""The query adapter: learned from (heading, passage) pairs, applied to questions, switchable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from langchain_core.documents import Document

from qa.adapter import ADAPTER_FILE, fit_adapter, train_adapter
from qa.retrieval import open_retriever
from settings import get_settings


def top1(queries: np.ndarray, targets: np.ndarray) -> float:
    """Share of queries whose own target is the nearest of all targets."""
    scores = queries @ targets.T
    return float((scores.argmax(axis=1) == np.arange(len(queries))).mean())


def test_the_adapter_learns_the_map_its_pairs_share() -> None:
    rng = np.random.default_rng(0)
    dim, n = 32, 1500
    targets = rng.normal(size=(n, dim))
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    skew = np.eye(dim) + 1.5 * rng.normal(size=(dim, dim)) / np.sqrt(dim)  # how queries word things
    queries = targets @ skew + 0.2 * rng.normal(size=(n, dim))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    train, test = slice(0, 1000), slice(1000, n)
    matrix = train_adapter(queries[train], targets[train])
    mapped = queries[test] @ matrix
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    assert (
        top1(mapped, targets[test]) > top1(queries[test], targets[test]) + 0.1
    )  # on pairs it never saw (0.39 -> 0.53)
    assert np.array_equal(matrix, train_adapter(queries[train], targets[train]))  # same data, same map


def test_a_small_docs_set_gets_no_adapter(tmp_path: Path) -> None:
    (tmp_path / ADAPTER_FILE).write_bytes(b"an old map")
    chunks = [Document(id=str(i), page_content=f"Page > Section {i}\n\nText.") for i in range(10)]
    assert not fit_adapter(tmp_path, chunks, np.eye(10, 8, dtype=np.float32), embeddings=None)
    assert not (tmp_path / ADAPTER_FILE).exists()  # an old map of a bigger docs set is not kept


def test_the_retriever_maps_questions_with_the_saved_adapter(docs_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(docs_data, data)
    question = "how do I start the server without opening a browser tab?"
    plain = open_retriever(get_settings(data_dir=data)).search(question)
    assert plain.documents[0].metadata["source"] == "guide/start.md"
    dim = len(open_retriever(get_settings(data_dir=data)).embeddings.embed_query("x"))
    np.save(data / "index" / ADAPTER_FILE, -np.eye(dim, dtype=np.float32))  # a map that turns meaning around
    mapped = open_retriever(get_settings(data_dir=data)).search(question)
    assert mapped.documents[0].metadata["source"] != "guide/start.md"
    off = open_retriever(get_settings(data_dir=data, query_adapter=False)).search(question)
    assert off.documents[0].metadata["source"] == "guide/start.md"  # QUERY_ADAPTER=false ignores it
