"""What the local embedding model reads of a chunk, tested with the real all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np

from qa.embeddings import LocalMiniLM

LONG = " ".join(
    f"Step {i}: the annotator opens task {i}, draws a bounding box around each car and submits it."
    for i in range(40)
)  # ~800 word pieces: several windows


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_markup_does_not_change_what_a_chunk_means() -> None:
    emb = LocalMiniLM()
    marked, plain = emb.embed_documents(
        [
            "Tags > Choices\n\n| Param | Type |\n| --- | --- |\n| **choice** | `single` |\n"
            "See [Choices](https://labelstud.io/tags/choices.html).",
            "Tags Choices\nParam Type\nchoice single\nSee Choices.",
        ]
    )
    assert cosine(marked, plain) > 0.99


def test_a_long_text_is_read_whole_in_windows_and_gives_one_unit_vector() -> None:
    windowed, single = LocalMiniLM(), LocalMiniLM(window=0)
    (vec,) = windowed.embed_documents([LONG])
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4
    # The same meaning as the model's own single pass over its first 256 tokens.
    assert cosine(vec, single.embed_documents([LONG])[0]) > 0.9
    # The tail is read too: one pass cuts a text at 256 tokens and never sees its end.
    changed = LONG + " Finally the reviewer exports everything to COCO and YOLO formats for training."
    assert cosine(single.embed_documents([LONG])[0], single.embed_documents([changed])[0]) > 0.99999
    assert cosine(vec, windowed.embed_documents([changed])[0]) < 0.9999


def test_the_store_records_how_vectors_were_made() -> None:
    assert LocalMiniLM().name == "local:all-MiniLM-L6-v2+plain-w126"
    assert LocalMiniLM(window=0).name == "local:all-MiniLM-L6-v2+plain"
