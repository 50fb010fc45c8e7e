"""Pre-rating answers for reviewers: a model's Good or Bad, with one sentence of reason.

Reviewers judge answers one by one. A capable model that reads the excerpts the
answering model read can flag the answers likely to be wrong, so reviewers look at
those first, and its reason points at what to check. It is a hint, never a
verdict: accuracy counts only users' and reviewers' ratings, and the feedback
report measures how often pre-ratings agree with reviewers, so how far to trust
them is a figure. The tiny bundled model is not asked by default (`PRE_RATE=auto`):
on 99 answers of known quality (`bench/judge.py`) it gave a verdict in 4 replies and
answered the question instead in the rest.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser

from qa.llm import ServedModel, make_side_model, model_id
from qa.prompts import JUDGE, load_prompt
from settings import Settings

log = logging.getLogger(__name__)

Rating = Literal["good", "bad"]
MAX_REASON_CHARS = 400
JUDGE_MAX_TOKENS = 160  # two lines: the verdict and a sentence
MAX_ANSWER_CHARS = 6000  # an answer cut at its token cap is far shorter; this bounds the prompt

_VERDICT = re.compile(r"verdict\s*[:：=-]\s*[\"'*_`\s]*(good|bad)\b", re.IGNORECASE)
_LEADING = re.compile(r"^[\s\"'*_`#>-]*(good|bad)\b", re.IGNORECASE)
_REASON = re.compile(r"reason\s*[:：=-]\s*(.+)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class PreRating:
    """A model's opinion of one answer, for reviewers to confirm or overrule."""

    verdict: Rating
    reason: str
    model: str  # the model that answered the judge prompt, as its server names it
    prompt_version: str


def parse_verdict(text: str) -> tuple[Rating, str] | None:
    """The verdict and reason in a judge's reply; None when it gives no verdict.

    Models answer "Verdict: Good / Reason: ...", but also "**Verdict:** Bad", or just
    "Bad. The answer ..."; anything without good or bad in the verdict's place is no
    pre-rating rather than a guess.
    """
    found = _VERDICT.search(text) or _LEADING.search(text)
    if not found:
        return None
    verdict: Rating = "good" if found.group(1).lower() == "good" else "bad"
    reason_match = _REASON.search(text)
    reason = reason_match.group(1) if reason_match else text[found.end() :]
    reason = " ".join(reason.replace("**", "").split()).strip(" .:-")
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1].rstrip() + "…"
    return verdict, reason + "." if reason and reason[-1] not in ".!?…" else reason


class AnswerJudge:
    """Asks `llm` whether an answer is good, given the excerpts it was written from.

    One instance serves the whole app; `rate` is called off the request path (the
    chat never waits for it). Model errors propagate: the caller logs them and the
    answer simply has no pre-rating.
    """

    def __init__(self, llm: BaseChatModel) -> None:
        self.llm = llm
        self.prompt = load_prompt(JUDGE)
        self.model = model_id(llm)
        self._chain = self.prompt.template() | llm | StrOutputParser()

    def rate(self, question: str, answer: str, context: str) -> PreRating | None:
        """Pre-rate `answer` to `question`; `context` is the excerpts its model read.

        None when the model's reply holds no verdict (logged with the reply's start).
        """
        if len(answer) > MAX_ANSWER_CHARS:
            answer = answer[:MAX_ANSWER_CHARS] + " …"
        served = ServedModel()
        reply = self._chain.invoke(
            {"context": context.strip() or "(none)", "question": question, "answer": answer},
            {"callbacks": [served]},
        )
        parsed = parse_verdict(reply)
        if parsed is None:
            if not reply.strip():  # a server that sends empty messages, or a model out of tokens
                log.warning(
                    "the judge model %s sent back an empty reply (finish reason %r); the answer stays without"
                    " a pre-rating. If every answer's does, set PRE_RATE_MODEL to a chat model the server serves.",
                    served.name or self.model,
                    served.finish_reason,
                )
                return None
            log.warning(
                "the judge model gave no verdict (%r); the answer stays without a pre-rating", reply[:200]
            )
            return None
        verdict, reason = parsed
        return PreRating(verdict, reason, served.name or self.model, self.prompt.version)


def make_judge(settings: Settings, llm: BaseChatModel | None = None) -> AnswerJudge:
    """The judge for the configured backend: PRE_RATE_MODEL (or OPENAI_MODEL), whole replies, short.

    `llm`: another chat model to judge with (the tests' stand-in).
    """
    if llm is None:
        llm = make_side_model(settings, settings.pre_rate_model, JUDGE_MAX_TOKENS)
    return AnswerJudge(llm)
