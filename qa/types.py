"""Small value types shared by the retrieval and answering modules."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.documents import Document


@dataclass(frozen=True)
class Source:
    """A cited place in the docs: what the UI links to and the log records."""

    n: int  # the [n] the prompt numbered this chunk with
    source: str  # repo-relative path, e.g. docs/source/guide/start.md
    section: str  # heading path, e.g. "Start Label Studio > Command line arguments"
    url: str  # web link (GitHub blob at the commit, with #anchor) or ""
    score: float = 0.0
    # the lines of the passage that answer the question (`qa.quotes`): shown under the answer, and
    # to reviewers beside it. Not compared: a cited source is the same place as the one retrieved
    quote: str = field(default="", compare=False)

    @classmethod
    def from_document(cls, n: int, doc: Document) -> Source:
        meta = doc.metadata
        return cls(
            n=n,
            source=str(meta.get("source", "")),
            section=str(meta.get("section") or meta.get("title") or ""),
            url=str(meta.get("url", "")),
            score=float(meta.get("score", 0.0)),
        )

    def as_dict(self) -> dict[str, object]:
        """What the log records; `quote` only when there is one (cited sources have them)."""
        data: dict[str, object] = {
            "n": self.n,
            "source": self.source,
            "section": self.section,
            "url": self.url,
            "score": self.score,
        }
        if self.quote:
            data["quote"] = self.quote
        return data


@dataclass(frozen=True)
class Preferred:
    """A place in the docs to lift in one search, and by how much (added to its chunks' scores)."""

    source: str  # repo-relative path
    section: str  # heading path, as chunks record it
    weight: float


@dataclass
class RetrievalResult:
    """What a search returns: ranked chunks and whether the docs cover the query.

    `abstain` is the retriever's verdict that nothing relevant was found; the
    answer chain then replies without calling the LLM.
    """

    query: str
    documents: list[Document] = field(default_factory=list)
    abstain: bool = False
    confidence: float = 0.0
    seconds: float = 0.0  # time the search took
    unknown_terms: list[str] = field(default_factory=list)  # query words the docs never use
    unstated: str = ""  # what the query asks for that no passage states ("prices"), else ""
