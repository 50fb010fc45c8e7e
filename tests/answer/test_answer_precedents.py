"""A reviewer's verdict on an earlier answer comes back when the same question is asked again."""

from __future__ import annotations

import threading
import time

import pytest
from answer_testkit import KeywordRetriever, fake_chat
from langchain_core.embeddings import Embeddings

from qa.chain import AnswerChain
from qa.embeddings import make_embeddings
from qa.precedents import Judged, JudgedAnswers
from settings import Settings, get_settings

ASKED = "how do i stop label studio from opening a browser tab on start?"
REWORDED = "How can I prevent Label Studio from opening a new browser tab when it starts?"
APPROVED = Judged(
    id="ex-1",
    question=ASKED,
    answer="Start it with `label-studio start --no-browser` [1].",
    verdict="good",
    reviewer="ana",
    time="2026-11-20T10:00:00+00:00",
)
REJECTED = Judged(
    id="ex-2",
    question="can I raise the webhook timeout?",
    answer="No, it is fixed at 1 second [2].",
    verdict="bad",
    comment="WEBHOOK_TIMEOUT raises it",
    reviewer="bo",
    time="2026-11-21T09:00:00+00:00",
)


@pytest.fixture(scope="module")
def minilm() -> Embeddings:
    """The real local embeddings, the ones the app searches questions with."""
    return make_embeddings(get_settings(_env_file=None))


def test_a_reworded_question_finds_the_verdict_and_another_question_does_not(minilm: Embeddings) -> None:
    judged = JudgedAnswers(minilm, min_similarity=0.85)
    judged.update([APPROVED, REJECTED])

    found = judged.find(REWORDED)
    assert found is not None and found.judged == APPROVED and found.similarity >= 0.9
    assert judged.find("how do i increase the timeout for webhooks").judged == REJECTED
    assert judged.find("how do I export annotations in YOLO format?") is None  # a question of its own
    assert judged.find("how do I make label studio open a browser tab on start?").judged == APPROVED

    judged.update([REJECTED])  # the approval withdrawn in Label Studio
    assert judged.find(REWORDED) is None
    assert JudgedAnswers(minilm, min_similarity=0).find(ASKED) is None  # 0 = off


def test_the_latest_verdict_wins_when_the_same_question_was_judged_twice(minilm: Embeddings) -> None:
    judged = JudgedAnswers(minilm)
    later = Judged(
        id="ex-3", question=ASKED, answer="Use -b.", verdict="bad", time="2026-11-22T08:00:00+00:00"
    )
    judged.update([APPROVED, later])
    assert judged.find(ASKED).judged == later


def test_an_approved_answer_is_an_example_in_the_prompt_and_comes_back_with_the_answer(
    retriever: KeywordRetriever, settings: Settings, minilm: Embeddings
) -> None:
    judged = JudgedAnswers(minilm)
    judged.update([APPROVED, REJECTED])
    llm = fake_chat("Use `--no-browser` [1].", "Set `WEBHOOK_TIMEOUT` [1].", "Use `--no-browser`.")
    chain = AnswerChain(retriever, llm, settings, compact=False, precedents=judged)

    answer = chain.answer(REWORDED)
    prompt = llm.prompts[0][-1].content
    assert "A reviewer approved this earlier answer to the same question." in prompt
    assert f"Earlier question: {ASKED}\nEarlier answer: {APPROVED.answer}" in prompt
    assert (
        prompt.index("Documentation excerpts:")
        < prompt.index("A reviewer approved")
        < prompt.index("Question:")
    )
    assert answer.precedent is not None and answer.precedent.judged.id == "ex-1"
    assert answer.prompt_version == "answer-v2"

    answer = chain.answer("my webhook times out; can I raise the timeout for webhooks?")
    prompt = llm.prompts[1][-1].content
    assert (
        'marked this earlier answer to the same question wrong. The reviewer said: "WEBHOOK_TIMEOUT raises it"'
        in prompt
    )
    assert answer.precedent.judged.verdict == "bad"

    compact = AnswerChain(retriever, llm, settings, compact=True, precedents=judged)
    answer = compact.answer(REWORDED)
    assert "earlier answer" not in llm.prompts[2][-1].content  # the tiny model would copy it
    assert answer.precedent.judged.id == "ex-1"  # shown under the answer all the same


def test_without_a_verdict_on_the_question_the_prompt_is_as_before(
    retriever: KeywordRetriever, settings: Settings, minilm: Embeddings
) -> None:
    llm = fake_chat("Use `--no-browser` [1].")
    chain = AnswerChain(retriever, llm, settings, compact=False, precedents=JudgedAnswers(minilm))
    answer = chain.answer(REWORDED)
    assert answer.precedent is None
    assert "earlier answer" not in llm.prompts[0][-1].content.lower()
    prompt = llm.prompts[0][-1].content
    assert "\n\n\n" not in prompt and prompt.endswith(f"Question: {REWORDED}")  # no empty block left


def test_a_question_does_not_wait_for_verdicts_still_being_embedded(minilm: Embeddings) -> None:
    judged = JudgedAnswers(minilm)
    judged.update([APPROVED])
    many = [
        Judged(id=str(i), question=f"question number {i} about exports", answer="a", verdict="good")
        for i in range(500)
    ]
    loading = threading.Thread(target=judged.update, args=([APPROVED, *many],))
    loading.start()
    deadline = time.monotonic() + 10
    while not judged._lock.locked() and time.monotonic() < deadline:  # the app's startup load embeds
        time.sleep(0.001)
    assert judged.update([APPROVED, REJECTED], wait=False) is False  # a question's refresh: no wait
    assert judged.find(REWORDED).judged == APPROVED  # answered from the verdicts loaded so far
    loading.join()
    assert len(judged) == 501
