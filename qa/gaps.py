"""Questions asked in other words, grouped: which needs the docs leave unanswered, and how often.

A maintainer reading a list of failed questions one by one sees "how do I lock a task
for one annotator?" five times in five wordings and can't tell it from five needs. The
questions are grouped by their embeddings (the docs' own model): a question joins the
group whose first question is nearest, if that is at least `GROUP_SIMILARITY` near.

Measured on the question sets (eval/README): at 0.7, 60 % of the 324 blind rewordings
in `bench/paraphrases.jsonl` fall in their original's group, and 15 of the 106,953 pairs
of different questions of the eleven sets would be grouped (several of them one question
asked in two sets); at 0.75, 47 % and 7; at 0.65, 73 % and 34.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

GROUP_SIMILARITY = 0.7


def group_similar(
    texts: Sequence[str], embeddings: Embeddings, min_similarity: float = GROUP_SIMILARITY
) -> list[list[int]]:
    """Indices of `texts` in groups of the same need, largest group first (then first seen).

    Greedy and in order: each text joins the group whose first text is nearest, if that is
    at least `min_similarity` near, else starts one. Give the texts newest first and each
    group leads with its newest wording.
    """
    if not texts:
        return []
    vectors = np.asarray(embeddings.embed_documents(list(texts)), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    groups: list[list[int]] = []
    leads = np.empty_like(vectors)  # row g: group g's first text (a view of the first rows, not a copy)
    for i in range(len(texts)):
        # einsum, not `@`: no BLAS threads (see qa.retrieval)
        near = np.einsum("ij,j->i", leads[: len(groups)], vectors[i])
        best = int(near.argmax()) if len(near) else -1
        if best >= 0 and near[best] >= min_similarity:
            groups[best].append(i)
        else:
            leads[len(groups)] = vectors[i]
            groups.append([i])
    return sorted(groups, key=lambda g: (-len(g), g[0]))


__all__ = ["GROUP_SIMILARITY", "group_similar"]
