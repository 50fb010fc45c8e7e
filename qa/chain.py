"""The answer chain: condense a follow-up → retrieve → numbered prompt → model → streamed, cited answer.

Built with LCEL so every step is a Runnable (traceable, swappable), and wrapped in
`AnswerChain.stream()`, which turns the chain's output into events the UI can render
without knowing LangChain: text pieces as they arrive, then one final `Answer` with the
cited sources, the prompt version and timings.

When retrieval says the docs don't cover the question, the reply is written without
calling the model (a model, especially a small one, answers anyway and invents things).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import (
    Runnable,
    RunnableBranch,
    RunnableConfig,
    RunnableLambda,
    RunnablePassthrough,
)

from qa.language import foreign_language
from qa.llm import (
    AnswerStopped,
    ServedModel,
    StopWhenSet,
    describe_empty,
    describe_error,
    make_chat_model,
    model_id,
    uses_local_model,
)
from qa.precedents import JudgedAnswers, Precedent, reviewed_places
from qa.prompts import (
    ABSTAIN,
    CONDENSE,
    PromptSpec,
    answer_prompt,
    answer_prompt_name,
    closest_documents,
    focus_context,
    format_closest,
    format_context,
    format_history,
    load_prompt,
    select_context,
)
from qa.quotes import source_quote
from qa.retrieval import tokenize
from qa.store import file_stamp
from qa.types import Preferred, RetrievalResult, Source
from settings import Settings, get_settings

log = logging.getLogger(__name__)

CONCAT_CONDENSE = "concat"  # how the standalone question was made when no model was asked
NO_CONDENSE = "none"
# Without a model to rewrite it, a short question that points back at the conversation is searched
# with an earlier question glued on (`recent_questions`): a pronoun ("can I raise it?"), a continuation
# ("and for GCS?", "what about Azure?"), or too few words to stand alone ("webhooks?"). Whether the
# glue helps is then measured: both are searched, and the question alone wins when it matches the
# docs at least as well ("webhooks?" after a question about Slack), so a new topic, however short,
# is searched as asked. A question of SELF_CONTAINED_WORDS words or more says what its "it" is
# ("I get 'CSRF verification failed' behind my proxy. How do I fix it?"): of the 463 one-off
# questions of the eval sets, 207 have such a word and would have been glued; 4 still are.
POINTS_BACK = re.compile(
    r"\b(?:it|its|they|them|their|these|those|also|too|instead|same|former|latter)\b"
    r"|\b(?:that|this)\b(?=\s*(?:[?.!,;]|$|one\b))"
    r"|\b(?:do|does|did|change|set|use|fix|enable|disable|turn|undo|get|make|configure) (?:that|this)\b",
    re.IGNORECASE,
)
CONTINUES = re.compile(r"^\s*(?:and|but|or|so|then|what about|how about|what if|why not)\b", re.IGNORECASE)
IDIOMS = re.compile(r"\bis it (?:possible|ok|okay|safe|normal|true|necessary|worth|better)\b", re.IGNORECASE)
STANDALONE_MIN_WORDS = 4
SELF_CONTAINED_WORDS = 12
FOLLOW_UP_CANDIDATES = 2  # earlier questions a follow-up is tried with
FALLBACK_SOURCES = 3  # sources shown when the model cites none
MAX_HELPED_BY = 3  # approved answers to similar questions named under one answer (and rejections)


def places_of(docs: Sequence[Document]) -> set[tuple[str, str]]:
    """The (file, section) places of passages: what judged answers' citations are compared with."""
    return {(str(d.metadata.get("source", "")), str(d.metadata.get("section", ""))) for d in docs}


def refers_back(question: str) -> bool:
    """Whether a question may need the conversation to be understood (see `POINTS_BACK`)."""
    words = len(question.split())
    if words < STANDALONE_MIN_WORDS or CONTINUES.match(question):
        return True
    return words < SELF_CONTAINED_WORDS and bool(POINTS_BACK.search(IDIOMS.sub(" ", question)))


def glue(earlier: str, question: str) -> str:
    """A follow-up searched with an earlier question before it (its first 300 characters)."""
    return f"{earlier[:300]} {question}".strip()


def _terms(text: str) -> set[str]:
    return set(tokenize([text])[0])


def substituted(earlier: str, question: str, new: set[str], alone: RetrievalResult) -> str | None:
    """A continuation glued to the earlier question with the words it replaces left out, or None.

    "and for GCS?" after "How do I connect an S3 bucket as a source storage?" asks the same
    of GCS: glued whole, the S3 words outweigh the one new word, and S3 passages come first.
    The passages the follow-up finds alone that hold its new words (the GCS sections) show
    which earlier words still apply ("connect", "bucket", "storage") and which it replaces
    ("s3": in none of them). `new`: the follow-up's words (`new_terms`). None when nothing is
    replaced, or nothing of the earlier one stays.
    """
    earlier_terms = _terms(earlier)
    shown = [_terms(d.page_content) for d in alone.documents]
    # of those holding the new words, the two most on the earlier topic ("what about Azure?" alone
    # also finds Azure's Kubernetes ingress, which holds none of "connect an S3 bucket as a source")
    holding = sorted((w for w in shown if new and new <= w), key=lambda w: -len(w & earlier_terms))[:2]
    if not holding:
        return None
    seen = set().union(*holding)
    replaced = {w for w in earlier_terms if w not in seen}
    if not replaced or replaced == earlier_terms:
        return None
    kept = re.sub(
        r"[\w.\-/:]+", lambda m: "" if m.group().lower().strip(".-/:") in replaced else m.group(), earlier
    )
    return glue(re.sub(r"\s+", " ", kept).strip(), question)


def _first_holds(new: set[str], found: RetrievalResult) -> bool:
    """Whether the first passage found holds the words the follow-up adds (`new_terms`)."""
    return bool(found.documents) and new <= _terms(found.documents[0].page_content)


def new_terms(question: str, earlier: str) -> set[str]:
    """The words a continuation adds: "and for GCS?" → {"gcs"} ("what about" is no topic)."""
    return _terms(CONTINUES.sub("", question)) - _terms(earlier)


def recent_questions(history: Sequence[tuple[str, str]], count: int = FOLLOW_UP_CANDIDATES) -> list[str]:
    """The user's last `count` distinct messages, latest first: what a follow-up may be about.

    Not only the last one: after "thanks!" or another follow-up ("and for GCS?"), the
    topic is one further back ("thanks! Video tag?" abstained where "Video tag?" alone is answered).
    """
    found: list[str] = []
    for role, text in reversed(history):
        if role == "user" and text not in found:
            found.append(text)
            if len(found) == count:
                break
    return found


class QuestionError(ValueError):
    """The question can't be asked as typed (empty, too long); the message says what to do."""


class AnswerError(RuntimeError):
    """Answering failed; `str(error)` is a sentence the user can act on (no traceback, no key)."""


class Retriever(Protocol):
    def search(
        self, query: str, k: int | None = None, prefer: Sequence[Preferred] = ()
    ) -> RetrievalResult: ...


@dataclass(frozen=True)
class Answer:
    """Everything known about one answer: shown by the UI, logged by the feedback module."""

    question: str  # as the user typed it
    standalone_question: str  # what was searched (the follow-up rewritten with the history)
    text: str
    cited: list[Source]  # the chunks the answer cites, in order of first citation
    sources: list[Source]  # every chunk retrieved, numbered as in the prompt
    # False: the model cited nothing, `cited` holds the top sources instead. True too when the
    # model read only an extract of `cited` (compact): they are its sources, cited or not.
    citations_found: bool
    abstained: bool  # True: the docs don't cover it, the model was not called
    confidence: float
    prompt_version: str  # e.g. "answer-v1" ("abstain-v1" when abstained)
    condense: str  # "none" (no history), "concat", or the condense prompt version
    model: str
    retrieval_ms: float  # condense + retrieve + prompt build: everything before the model
    first_token_ms: float  # from the question to the first piece of answer text
    total_ms: float
    cut_short: bool = False  # the answer stopped at its token cap (LLM_MAX_TOKENS / LOCAL_LLM_MAX_TOKENS)
    precedent: Precedent | None = None  # a reviewer's verdict on an earlier answer to this question
    # approved answers to similar questions whose cited places were lifted into this one's passages
    helped_by: list[Precedent] = field(default_factory=list)
    # answers to similar questions rejected for wrong passages, which would otherwise have been read
    lowered_by: list[Precedent] = field(default_factory=list)
    # abstained: the closest passages it searched (those the reply names), with their quotes
    closest: list[Source] = field(default_factory=list)
    # the excerpts the model read, numbered as it cited them ("" when abstained): what `qa.judge`
    # checks the answer against
    context: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cited"] = [s.as_dict() for s in self.cited]
        data["sources"] = [s.as_dict() for s in self.sources]
        data["closest"] = [s.as_dict() for s in self.closest]
        return data


@dataclass(frozen=True)
class AnswerEvent:
    """One step of a streamed answer: a piece of text, or (last) the finished `Answer`."""

    text: str = ""  # new text to append to what is shown
    answer: Answer | None = field(default=None)

    @property
    def done(self) -> bool:
        return self.answer is not None


# --- input checks ----------------------------------------------------------------------


def validate_question(question: object, settings: Settings) -> str:
    """The question, stripped; or a QuestionError that says what to change."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("Please type a question about the docs.")
    text = question.strip()
    limit = settings.max_question_chars
    if len(text) > limit:
        raise QuestionError(
            f"Your question is {len(text):,} characters long; the limit is {limit:,} (MAX_QUESTION_CHARS). "
            "Shorten it to the part you want answered and ask again."
        )
    return text


_ROLE_NAMES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "bot": "assistant",
}


def _content_text(content: object) -> str:
    """Text of a message content: a string, or Gradio's list of parts (files are skipped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return str(content.get("text", "")) if content.get("type", "text") == "text" else ""
    if isinstance(content, Sequence):
        return "\n".join(filter(None, (_content_text(part) for part in content)))
    return ""


def normalize_history(history: Sequence[object] | None, keep: int) -> list[tuple[str, str]]:
    """Accept (role, text) pairs or OpenAI/Gradio-style message dicts; return the last `keep` turns.

    System messages, empty messages and Gradio "thought" messages (those with a metadata
    title, e.g. a collapsible sources box) are left out: they are not conversation.
    """
    turns: list[tuple[str, str]] = []
    for i, item in enumerate(history or []):
        if isinstance(item, Mapping):
            role, metadata = item.get("role"), item.get("metadata") or {}
            if isinstance(metadata, Mapping) and metadata.get("title"):
                continue
            text = _content_text(item.get("content"))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
            role, text = item[0], _content_text(item[1])
        else:
            raise ValueError(f"history item {i} is neither (role, text) nor a message dict: {item!r:.80}")
        if role == "system" or not text.strip():
            continue
        if role not in _ROLE_NAMES:
            raise ValueError(f"history item {i} has role {role!r}; expected user or assistant")
        turns.append((_ROLE_NAMES[str(role)], text.strip()))
    return turns[-keep:] if keep > 0 else []


# --- citations ---------------------------------------------------------------------------

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def parse_citations(text: str, count: int) -> list[int]:
    """The [n] numbers cited in `text` (also [1, 2]), first-cited first, within 1..count."""
    cited: list[int] = []
    for match in _CITATION.finditer(text):
        for part in match.group(1).split(","):
            n = int(part)
            if 1 <= n <= count and n not in cited:
                cited.append(n)
    return cited


# --- the chain ---------------------------------------------------------------------------


def compact_prompt(settings: Settings) -> bool:
    """PROMPT_STYLE: compact, chat, or auto (compact for the bundled local model)."""
    style = settings.prompt_style
    return style == "compact" or (style == "auto" and uses_local_model(settings))


class AnswerChain:
    """Answers questions from the docs; one instance serves every user (it keeps no per-user state).

    `retriever` is anything with `search(query) -> RetrievalResult`; `llm` any LangChain
    chat model (default: `make_chat_model(settings)`). `compact` picks the prompt for tiny
    models; by default it follows PROMPT_STYLE (auto: compact for the local model).
    `precedents`: answers reviewers judged; one to the same question goes into the prompt
    (not the tiny model's: it would copy it) and comes back with the answer. `prompt`: the
    answer prompt to use instead of the configured one (trying a revision, `qa.revise`).
    """

    def __init__(
        self,
        retriever: Retriever,
        llm: BaseChatModel | None = None,
        settings: Settings | None = None,
        *,
        compact: bool | None = None,
        precedents: JudgedAnswers | None = None,
        prompt: PromptSpec | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.retriever = retriever
        self.precedents = precedents
        self.llm = llm if llm is not None else make_chat_model(self.settings)
        self.compact = compact_prompt(self.settings) if compact is None else compact
        overrides = self.settings.prompts_dir
        self.answer_prompt = prompt or answer_prompt(self.compact, overrides)
        self._prompt_stamp = file_stamp(self._answer_file)  # what `follow_prompts` last read
        self.condense_prompt = load_prompt(CONDENSE, overrides)
        self.abstain_prompt = load_prompt(ABSTAIN, overrides)
        self.model = model_id(self.llm)
        self._condense_chain = self.condense_prompt.template() | self.llm | StrOutputParser()
        self.runnable = self._build()

    # The LCEL graph. Input: {"question", "history"}; streamed output: dict chunks, first the
    # prepared state (standalone question, retrieval, numbered context), then "answer" pieces.
    def _build(self) -> Runnable:
        prepare = (
            RunnablePassthrough.assign(condensed=RunnableLambda(self._condense))
            | RunnablePassthrough.assign(related=RunnableLambda(self._related))
            | RunnablePassthrough.assign(retrieval=RunnableLambda(self._retrieve))
            | RunnableLambda(self._prepare_prompt)
        )
        generate = RunnableBranch(
            (lambda state: state["abstain"], RunnableLambda(self._abstain_reply)),
            itemgetter("prompt_input") | self.answer_prompt.template() | self.llm | StrOutputParser(),
        )
        return prepare | RunnablePassthrough.assign(answer=generate)

    @property
    def _answer_file(self) -> Path:
        return self.settings.prompts_dir / f"{answer_prompt_name(self.compact)}.md"

    def follow_prompts(self) -> None:
        """Answer with an answer-prompt file changed on disk from the next question on.

        A revision adopted by another process (`python app.py prompt adopt`), a file edited
        by hand, or removed: one stat per call. A file that can't be used keeps the prompt in
        use, with a warning in the log, as a new index that can't be loaded keeps the old one.
        """
        stamp = file_stamp(self._answer_file)
        if stamp == self._prompt_stamp:
            return
        self._prompt_stamp = stamp
        try:
            spec = answer_prompt(self.compact, self.settings.prompts_dir)
            if spec != self.answer_prompt:
                self.use_answer_prompt(spec)
                log.info("answering with the prompt %s from %s", spec.version, spec.path)
        except ValueError as exc:  # a PromptFileError, or a file that fills other variables
            log.warning(
                "%s cannot be used (%s); answering with %s",
                self._answer_file,
                exc,
                self.answer_prompt.version,
            )

    def use_answer_prompt(self, prompt: PromptSpec) -> None:
        """Answer with `prompt` from the next question on (a revision adopted while the app runs).

        Answers being written finish with the prompt they started with: the graph is
        rebuilt and swapped in one assignment.
        """
        if prompt.variables() != self.answer_prompt.variables():
            raise ValueError(
                f"{prompt.version} fills {sorted(prompt.variables())}, not {sorted(self.answer_prompt.variables())}"
            )
        self.answer_prompt = prompt
        self.runnable = self._build()

    def _condense(self, state: dict[str, Any]) -> tuple[str, str, RetrievalResult | None]:
        """(standalone question, how it was made, its search if done). No history: no model call."""
        question, history = state["question"], state["history"]
        if not history:
            return question, NO_CONDENSE, None
        previous = recent_questions(history)
        if self.compact:  # tiny models answer the question instead of rewriting it (measured)
            return self._glue_if_better(question, previous)
        concat = glue(previous[0] if previous else "", question)
        raw = self._condense_chain.invoke({"history": format_history(history), "question": question})
        lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
        standalone = (
            re.sub(r"^(standalone question|question)\s*:\s*", "", lines[0], flags=re.I) if lines else ""
        )
        standalone = standalone.strip().strip('"“”').strip()
        if not standalone or len(standalone) > 3 * len(concat) + 200:
            return concat, CONCAT_CONDENSE, None
        return standalone, self.condense_prompt.version, None

    def _glue_if_better(
        self, question: str, previous: Sequence[str]
    ) -> tuple[str, str, RetrievalResult | None]:
        """The question alone, or glued to an earlier one when that finds the docs better.

        Each of the `previous` questions is glued on and searched; the one with the most
        evidence is the follow-up's topic. Gluing adds words, and words add evidence: the
        question alone still wins when it finds passages (does not abstain) with at least
        that much evidence, or when every glued version abstains too (the reply then
        quotes what the user typed).
        """
        if not refers_back(question):
            return question, NO_CONDENSE, None
        alone = self._search(question)
        best: tuple[str, RetrievalResult] | None = None
        for earlier in previous:
            glued = glue(earlier, question)
            found = self._search(glued)
            new = new_terms(question, earlier) if CONTINUES.match(question) else set()
            if (
                new
                and not _first_holds(new, found)
                and (variant := substituted(earlier, question, new, alone))
            ):
                instead = self._search(variant)  # "and for GCS?": the earlier question's S3 left out
                if not instead.abstain and _first_holds(new, instead):
                    glued, found = variant, instead
            if not found.abstain and (best is None or found.confidence > best[1].confidence):
                best = (glued, found)
        if best is None or (not alone.abstain and alone.confidence >= best[1].confidence):
            return question, NO_CONDENSE, alone
        return best[0], CONCAT_CONDENSE, best[1]

    def _retrieve(self, state: dict[str, Any]) -> RetrievalResult:
        standalone, _, searched = state["condensed"]
        return searched if searched is not None else self._search(standalone, state["related"])

    def _related(self, state: dict[str, Any]) -> list[Precedent]:
        """Judged answers to questions like the standalone one: what they cited is lifted or lowered
        in its search, and the approved ones that helped are named under the answer."""
        return self.precedents.related(state["condensed"][0]) if self.precedents is not None else []

    def _search(self, query: str, related: Sequence[Precedent] | None = None) -> RetrievalResult:
        """The retriever's search, moving what judged answers to similar questions (`related`) cited."""
        if self.precedents is None:
            return self.retriever.search(query)
        if related is None:
            related = self.precedents.related(query)
        places = reviewed_places(related, self.precedents.related_from, self.settings.reviewed_sources_weight)
        return self.retriever.search(query, prefer=places) if places else self.retriever.search(query)

    def _prepare_prompt(self, state: dict[str, Any]) -> dict[str, Any]:
        retrieval: RetrievalResult = state["retrieval"]
        standalone, how, _ = state["condensed"]
        docs = list(retrieval.documents)
        settings = self.settings
        if self.compact:
            pool = docs[: max(settings.local_llm_context_chunks, 1)]
            context, used = focus_context(standalone, pool, settings.local_llm_context_chars)
            context_docs = pool
        else:
            context_docs = select_context(docs, len(docs), settings.context_max_chars)
            context, used = format_context(context_docs), []
        precedent = self.precedents.find(standalone) if self.precedents is not None else None
        reviewed = f"\n\n{precedent.prompt_text()}" if precedent and not self.compact else ""
        related: list[Precedent] = state["related"]
        # a reviewer approved a cited answer to a question this near: the docs do answer it
        vouched = any(p.vouches for p in related)
        abstain = (retrieval.abstain and not vouched) or not docs
        read = places_of(docs)
        helped_by = [  # those whose places are among the passages read (the same question: `precedent`)
            p
            for p in related
            if not abstain
            and p.judged.verdict == "good"
            and (p.vouches or read.intersection(p.judged.cited))
            and (precedent is None or p.judged.id != precedent.judged.id)
        ][:MAX_HELPED_BY]
        lowered_by = [] if abstain else self._lowered_by(standalone, related)
        return {
            "question": state["question"],
            "standalone": standalone,
            "condense": how,
            "retrieval": retrieval,
            "documents": docs,
            "context_count": len(context_docs),
            "extract_from": used,
            "abstain": abstain,
            "precedent": precedent,
            "helped_by": helped_by,
            "lowered_by": lowered_by,
            "prompt_input": {"context": context, "reviewed": reviewed, "question": standalone},
        }

    def _lowered_by(self, query: str, related: Sequence[Precedent]) -> list[Precedent]:
        """The rejections for wrong passages that moved this answer's passages down (or out).

        Only those whose cited places the search would have read without them: the search
        is made again without the drops (~10 ms, and only when such a rejection is near).
        """
        rejections = [p for p in related if p.judged.places_sign < 0]
        if not rejections or self.precedents is None:
            return []
        approvals = [p for p in related if p.judged.places_sign > 0]
        places = reviewed_places(
            approvals, self.precedents.related_from, self.settings.reviewed_sources_weight
        )
        would_read = places_of(self.retriever.search(query, prefer=places).documents)
        return [p for p in rejections if would_read.intersection(p.judged.cited)][:MAX_HELPED_BY]

    def _abstain_reply(self, state: dict[str, Any]) -> str:
        terms = [f'"{t}"' for t in state["retrieval"].unknown_terms]
        missing = ""
        if language := foreign_language(state["question"]):
            # Its words are unknown because they are not English: say that, not which ones.
            missing = (
                f" Your question looks like it is in {language}: the docs are in English, and a question"
                " asked in English finds them far better."
            )
        elif terms:
            named = terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + f" or {terms[-1]}"
            missing = f" The docs never mention {named}."
        if state["retrieval"].unstated:
            missing += f" The passages I found state no {state['retrieval'].unstated}."
        return self.abstain_prompt.text(
            query=state["standalone"], missing=missing, closest=format_closest(state["documents"])
        )

    # --- public API ----------------------------------------------------------------------

    def stream(
        self, question: str, history: Sequence[object] | None = None, stop: threading.Event | None = None
    ) -> Iterator[AnswerEvent]:
        """Answer `question` (a follow-up to `history`), yielding text pieces, then the `Answer`.

        Raises QuestionError (before anything runs) for an empty or over-long question, and
        AnswerError with a user-facing message when the model or the search fails, or the
        model's answer has no text. Setting
        `stop` ends the stream at the model's next token, with no `Answer`, and the model
        stops writing too. So does closing the stream early (a browser gone mid-answer),
        which by itself would have read the model's reply to its end (see `StopWhenSet`).
        """
        text = validate_question(question, self.settings)
        turns = normalize_history(history, self.settings.history_messages)
        started = time.perf_counter()
        state: dict[str, Any] = {}
        pieces: list[str] = []
        prepared_at = first_at = 0.0
        served = ServedModel()
        stop = stop or threading.Event()
        config: RunnableConfig = {"callbacks": [served, StopWhenSet(stop)]}
        chunks = self.runnable.stream({"question": text, "history": turns}, config)
        try:
            for chunk in chunks:
                piece = chunk.pop("answer", None)
                if chunk:
                    state.update(chunk)
                    prepared_at = prepared_at or time.perf_counter()
                if piece:
                    first_at = first_at or time.perf_counter()
                    pieces.append(piece)
                    yield AnswerEvent(text=piece)
        except AnswerStopped:
            return
        except GeneratorExit:
            # Closed before the end: read on until the model's next token raises AnswerStopped,
            # which unwinds every step of the graph (closing `chunks` would read the whole reply).
            stop.set()
            with contextlib.suppress(AnswerStopped):
                for _ in chunks:
                    pass
            raise
        except Exception as exc:
            log.error("answering %r failed", text[:200], exc_info=exc)
            raise AnswerError(describe_error(exc, self.settings, partial=bool(pieces))) from exc
        if not "".join(pieces).strip():
            # No words (a server that sends an empty message, a reasoning model that spent its tokens
            # thinking): logged as an answer, it showed a bare list of sources and went to reviewers.
            log.error(
                "the model sent an empty answer to %r (finish reason %r)", text[:200], served.finish_reason
            )
            raise AnswerError(describe_empty(self.settings, served.name, served.finish_reason))
        ended = time.perf_counter()
        answer = self._finish(state, "".join(pieces), started, prepared_at, first_at, ended)
        answer = replace(
            answer, model=served.name or answer.model, cut_short=served.finish_reason == "length"
        )
        yield AnswerEvent(answer=answer)

    def answer(self, question: str, history: Sequence[object] | None = None) -> Answer:
        """The whole answer at once (scripts, evaluation)."""
        for event in self.stream(question, history):
            if event.answer is not None:
                return event.answer
        raise AssertionError("stream() always ends with an answer")  # pragma: no cover

    def _finish(
        self, state: dict[str, Any], text: str, started: float, prepared: float, first: float, ended: float
    ) -> Answer:
        docs: list[Document] = state["documents"]
        sources = [Source.from_document(n, doc) for n, doc in enumerate(docs, start=1)]
        abstained = bool(state["abstain"])
        numbers: list[int] = []
        if abstained:
            cited: list[Source] = []
        elif self.compact:  # the model read an extract: show the chunks it was drawn from
            cited = [sources[i] for i in state["extract_from"]]
        else:
            numbers = parse_citations(text, state["context_count"])
            cited = [sources[n - 1] for n in numbers] or sources[:FALLBACK_SOURCES]
        cited = [replace(s, quote=source_quote(state["standalone"], docs[s.n - 1])) for s in cited]
        closest = (  # the places the reply names, so the user may judge their lines themselves
            [
                replace(sources[i], quote=source_quote(state["standalone"], docs[i]))
                for i in closest_documents(docs)
            ]
            if abstained
            else []
        )

        def ms(moment: float) -> float:
            return round((moment - started) * 1000, 1) if moment else 0.0

        return Answer(
            question=state["question"],
            standalone_question=state["standalone"],
            text=text,
            cited=cited,
            sources=sources,
            citations_found=bool(numbers) or bool(self.compact and cited),
            abstained=abstained,
            confidence=float(state["retrieval"].confidence),
            prompt_version=self.abstain_prompt.version if abstained else self.answer_prompt.version,
            condense=state["condense"],
            model=self.model,
            precedent=state.get("precedent"),
            helped_by=list(state.get("helped_by", [])),
            lowered_by=list(state.get("lowered_by", [])),
            closest=closest,
            context="" if abstained else str(state["prompt_input"]["context"]),
            retrieval_ms=ms(prepared),
            first_token_ms=ms(first),
            total_ms=ms(ended),
        )
