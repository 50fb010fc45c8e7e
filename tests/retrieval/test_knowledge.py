"""Verdicts as knowledge: what a reviewer approved (or rejected for wrong passages) helps the next user
who asks it in other words.

On the real fixture store with the real local embeddings; only the model answering is a stand-in.
"""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from feedback.records import PROBLEMS
from qa.chain import AnswerChain
from qa.precedents import WRONG_SOURCES, Judged, JudgedAnswers
from qa.types import Preferred
from settings import get_settings

RELEASE = ("release_notes/2.22.0.md", "Label Studio Enterprise 2.22.0")
ASKED = "which helm chart version does the 2.22.0 release use?"
REWORDED = "helm chart for 2.22?"  # cosine 0.84 to ASKED: a similar question, not the same (0.85)
APPROVED = Judged(
    id="ex-1",
    question=ASKED,
    answer="Helm chart 1.4.0 [1].",
    verdict="good",
    reviewer="ana",
    cited=(RELEASE,),
)


def chain_for(retriever, judged: list[Judged], **settings: float) -> AnswerChain:  # noqa: ANN001
    """The chain as app.py builds it, with the reviewers' verdicts `judged` loaded."""
    config = get_settings(**settings)
    answers = JudgedAnswers(
        retriever.embeddings, config.reviewed_answer_match, related_from=config.reviewed_sources_match
    )
    answers.update(judged)
    llm = GenericFakeChatModel(messages=iter(["From the notes [1]."] * 5))
    return AnswerChain(retriever, llm, config, compact=False, precedents=answers)


def first_source(answer) -> tuple[str, str]:  # noqa: ANN001
    return answer.sources[0].source, answer.sources[0].section


def test_a_place_to_prefer_is_lifted_in_one_search(retriever_for) -> None:
    retriever = retriever_for()
    alone = retriever.search(REWORDED)
    assert alone.documents[0].metadata["source"] == "release_notes/2.3.1.md"  # the older chart's note
    lifted = retriever.search(REWORDED, prefer=[Preferred(*RELEASE, weight=0.2)])
    assert lifted.documents[0].metadata["source"] == RELEASE[0]
    assert retriever.search(REWORDED).documents[0].metadata["source"] == "release_notes/2.3.1.md"  # once only


def test_what_an_approved_answer_cited_ranks_first_for_a_similar_question(retriever_for) -> None:
    retriever = retriever_for()
    answer = chain_for(retriever, [APPROVED]).answer(REWORDED)
    assert first_source(answer) == RELEASE
    assert answer.precedent is None  # not the same question: no earlier answer in the prompt
    assert [p.judged.id for p in answer.helped_by] == ["ex-1"] and 0.8 < answer.helped_by[0].similarity < 0.85

    # Only an approval counts, only one that cited something, and the setting turns it off.
    rejected = Judged(id="ex-2", question=ASKED, answer="1.0 [1].", verdict="bad", cited=(RELEASE,))
    uncited = Judged(id="ex-3", question=ASKED, answer="No idea.", verdict="good")
    for judged, env in (([rejected], {}), ([uncited], {}), ([APPROVED], {"reviewed_sources_match": 0.0})):
        answer = chain_for(retriever, judged, **env).answer(REWORDED)
        assert first_source(answer)[0] == "release_notes/2.3.1.md" and answer.helped_by == []
    # A question about something else is not lifted by it.
    other = chain_for(retriever, [APPROVED]).answer("how do I start without opening a browser tab?")
    assert first_source(other)[0] == "guide/start.md" and other.helped_by == []


def test_a_near_approved_answer_keeps_a_question_the_retriever_would_silence_answered(retriever_for) -> None:
    question = "how do I show annotators the pictures in a directory on the host machine?"
    # weak words alone: on a threshold this question's evidence (0.76) falls short of, "the docs don't cover it"
    retriever = retriever_for(ABSTAIN_THRESHOLD="0.85")
    assert retriever.search(question).abstain
    approved = Judged(
        id="ex-4",
        question="how do I show annotators the images in a folder on the host machine?",  # cosine 0.94
        answer="Set LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT [1].",
        verdict="good",
        cited=(("guide/storage.md", "Local files"),),
    )
    answer = chain_for(retriever, [approved]).answer(question)
    assert not answer.abstained and answer.text == "From the notes [1]."  # the model was asked
    assert first_source(answer) == ("guide/storage.md", "Local files")
    silenced = chain_for(retriever, [approved], reviewed_sources_match=0.0).answer(question)
    assert silenced.abstained


def test_passages_a_reviewer_marked_wrong_rank_lower_for_a_similar_question(retriever_for) -> None:
    retriever = retriever_for()
    first = retriever.search(REWORDED).documents[0].metadata
    wrong = (str(first["source"]), str(first["section"]))
    assert wrong[0] == "release_notes/2.3.1.md"  # the older chart's note, first by retrieval alone
    rejected = Judged(
        id="ex-5",
        question=ASKED,
        answer="Helm chart 1.0.1 [1].",
        verdict="bad",
        cited=(wrong,),
        problems=(WRONG_SOURCES,),  # the reviewer ticked "wrong passages"
    )
    answer = chain_for(retriever, [rejected]).answer(REWORDED)
    assert first_source(answer) == RELEASE
    assert answer.helped_by == []  # a rejection is never named as help ...
    assert [p.judged.id for p in answer.lowered_by] == ["ex-5"]  # ... but as what kept the old note out
    # A rejection for another reason says nothing about the passages; the setting turns it off.
    worded = Judged(**{**rejected.__dict__, "problems": ("unclear",)})
    for judged, env in (([worded], {}), ([rejected], {"reviewed_sources_match": 0.0})):
        unmoved = chain_for(retriever, judged, **env).answer(REWORDED)
        assert first_source(unmoved) == wrong and unmoved.lowered_by == []
    assert WRONG_SOURCES in PROBLEMS  # the key the Review tab and Label Studio store
