"""Earlier answers that reviewers judged, found again when the same question comes back.

People ask the same things again ("how do I stop the browser tab opening?"). Once a
reviewer has judged an answer to a question, the next answer to that question should
not start from scratch: an approved answer is an example to follow, a rejected one
(with the reviewer's comment) a mistake not to repeat. The chain puts it in the prompt
of a capable model, and the chat shows it under the answer either way.

An approval also says where the docs answer such questions. `related` finds approved
answers to questions that are only similar (a cosine of at least `related_from`: other
words, the same need), and the chain has the retriever lift what they cited
(`reviewed_places`), the nearer the question the more. A rejection whose reviewer said
the passages were wrong (`WRONG_SOURCES`) says the opposite: what it cited is lowered
for similar questions by as much. A rejection for any other reason (the model's wording,
a missing step) says nothing about the passages, and moves nothing.

"The same question" is a cosine of at least `min_similarity` between the questions'
embeddings (the docs' own embedding model). Measured on the 463 questions of the
eleven question sets: no two different questions reach 0.90, and the only pairs at
0.85 or more are the same question asked twice in other words ("get red wine out of a
carpet", 0.89; "connect a OneDrive or SharePoint folder as source storage", 0.87; "3D
lidar point clouds with cuboids", 0.85). Rewordings such as "how do I stop Label Studio
from opening a browser tab on start?" / "How can I prevent Label Studio from opening a
new browser tab when it starts?" score 0.96; looser ones ("disable usage statistics" /
"turn off analytics", 0.57) are not found, which is the safe side.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.types import Preferred

# An approved, cited answer to a question at least this near means the docs answer this one too,
# whatever the abstain score says. Measured (bench/knowledge.py): none of the 92 unanswerable
# questions of the eleven sets comes nearer than 0.67 to any of 311 approved ones; of the 12
# rewordings of approved questions that the retriever alone wrongly silences, 3 are answered.
VOUCH_SIMILARITY = 0.75
# The problem a reviewer names when the passages an answer cited don't answer its question.
WRONG_SOURCES = "wrong_sources"
MAX_ANSWER_CHARS = 1500  # of an earlier answer put in the prompt: an example, not a second context


@dataclass(frozen=True)
class Judged:
    """An earlier answer with a reviewer's verdict on it."""

    id: str
    question: str
    answer: str
    verdict: Literal["good", "bad"]
    comment: str = ""
    reviewer: str = ""
    time: str = ""  # when it was judged (ISO 8601)
    # the places in the docs the answer cited, as (file, section): what an approval says answers it
    cited: tuple[tuple[str, str], ...] = ()
    problems: tuple[str, ...] = ()  # what the reviewer of a rejection found wrong (WRONG_SOURCES, ...)

    @property
    def places_sign(self) -> int:
        """+1: what it cited answers questions like it; -1: it does not (wrong passages); 0: unknown."""
        if not self.cited:
            return 0
        if self.verdict == "good":
            return 1
        return -1 if WRONG_SOURCES in self.problems else 0


@dataclass(frozen=True)
class Precedent:
    """A judged answer to (nearly) the same question, and how near its question is."""

    judged: Judged
    similarity: float

    @property
    def vouches(self) -> bool:
        """An approval this near says the docs answer the question, whatever the abstain score says."""
        return self.judged.verdict == "good" and self.similarity >= VOUCH_SIMILARITY

    def prompt_text(self) -> str:
        """What a capable model is told of it, below the excerpts."""
        judged = self.judged
        answer = judged.answer.strip()
        if len(answer) > MAX_ANSWER_CHARS:
            answer = answer[:MAX_ANSWER_CHARS].rstrip() + " …"
        if judged.verdict == "good":
            head = (
                "A reviewer approved this earlier answer to the same question. Follow it where the "
                "excerpts still support it (the docs may have changed), and cite the excerpts, not it."
            )
        else:
            said = f' The reviewer said: "{judged.comment.strip()}".' if judged.comment.strip() else ""
            head = f"A reviewer marked this earlier answer to the same question wrong.{said} Do not repeat its mistake."
        return f"{head}\nEarlier question: {judged.question.strip()}\nEarlier answer: {answer}"


class JudgedAnswers:
    """The judged answers, searchable by question; `update` replaces them, embedding only new questions.

    One instance serves every user: `find` reads one consistent snapshot while
    `update` builds the next.
    """

    def __init__(
        self, embeddings: Embeddings, min_similarity: float = 0.85, related_from: float = 0.0
    ) -> None:
        self.embeddings = embeddings
        self.min_similarity = min_similarity
        self.related_from = related_from  # `related`: approved answers to questions at least this near
        self._last_query: tuple[str, np.ndarray] | None = None  # `find` and `related` embed it once
        self._vectors: dict[str, np.ndarray] = {}  # question text -> unit vector
        self._snapshot: tuple[list[Judged], np.ndarray] = ([], np.zeros((0, 0), dtype=np.float32))
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._snapshot[0])

    def update(self, judged: Sequence[Judged], *, wait: bool = True) -> bool:
        """Make `judged` the answers `find` searches (a verdict withdrawn is one left out).

        Embedding is the slow part (~1.4 s per 1000 new questions here): with `wait=False`,
        while another update runs this one returns False at once, and `find` keeps
        answering from the last snapshot.
        """
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            new = list(dict.fromkeys(j.question for j in judged if j.question not in self._vectors))
            if new:
                for question, vector in zip(new, self.embeddings.embed_documents(new), strict=True):
                    array = np.asarray(vector, dtype=np.float32)
                    self._vectors[question] = array / max(float(np.linalg.norm(array)), 1e-12)
            items = list(judged)
            self._vectors = {j.question: self._vectors[j.question] for j in items}  # forget the withdrawn
            matrix = np.stack([self._vectors[j.question] for j in items]) if items else np.zeros((0, 0))
            self._snapshot = (items, matrix.astype(np.float32))
        finally:
            self._lock.release()
        return True

    def find(self, question: str) -> Precedent | None:
        """The judged answer whose question is nearest `question`, if it is the same question.

        Among equally near ones (the same question judged more than once), the latest verdict.
        """
        items, matrix = self._snapshot
        if not items or self.min_similarity <= 0:
            return None
        scores = np.einsum("ij,j->i", matrix, self._embed(question))  # einsum: no BLAS threads (qa.retrieval)
        best = float(scores.max())
        if best < self.min_similarity:
            return None
        ties = [i for i in range(len(items)) if scores[i] >= best - 1e-6]
        chosen = max(ties, key=lambda i: items[i].time)
        return Precedent(judged=items[chosen], similarity=round(best, 4))

    def related(self, question: str) -> list[Precedent]:
        """Judged answers whose citations say something, to questions at least `related_from` near.

        Nearest first: approved answers that cited the docs, and rejected ones whose
        reviewer said the passages were wrong. The retriever lifts what the first cited
        and lowers what the second did (`qa.chain`), so a verdict helps the next user who
        asks the same thing in other words, not only the one who asks it again.
        """
        items, matrix = self._snapshot
        if not items or self.related_from <= 0:
            return []
        scores = np.einsum("ij,j->i", matrix, self._embed(question))
        near = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= self.related_from]
        return [
            Precedent(judged=items[i], similarity=round(float(scores[i]), 4))
            for i in near
            if items[i].places_sign
        ]

    def _embed(self, question: str) -> np.ndarray:
        """The question's unit vector; the last one is kept, as `related` and `find` ask in turn."""
        last = self._last_query
        if last is not None and last[0] == question:
            return last[1]
        query = np.asarray(self.embeddings.embed_query(question), dtype=np.float32)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        self._last_query = (question, query)
        return query


def reviewed_places(related: Sequence[Precedent], start: float, weight: float) -> list[Preferred]:
    """What `related` judged answers cited, moved by `weight` scaled by how near each question is.

    Approved answers' places are lifted, those of answers rejected for wrong passages
    lowered (`Judged.places_sign`). A question at `start` moves them by 0, the same
    question by the whole `weight`: the nearer the question, the surer it is that the
    same place does (or does not) answer it. A place cited by several gets the largest
    lift and the largest drop, added.
    """
    lift: dict[tuple[str, str], float] = {}
    drop: dict[tuple[str, str], float] = {}
    for precedent in related:
        sign = precedent.judged.places_sign
        share = (precedent.similarity - start) / max(1.0 - start, 1e-6)
        amount = weight * min(max(share, 0.0), 1.0)
        moved = lift if sign > 0 else drop if sign < 0 else None
        if moved is None:
            continue
        for place in precedent.judged.cited:
            moved[place] = max(moved.get(place, 0.0), amount)
    places = {place: lift.get(place, 0.0) - drop.get(place, 0.0) for place in lift.keys() | drop.keys()}
    return [Preferred(source, section, w) for (source, section), w in places.items() if w]


__all__ = ["VOUCH_SIMILARITY", "WRONG_SOURCES", "Judged", "JudgedAnswers", "Precedent", "reviewed_places"]
