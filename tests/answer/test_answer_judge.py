"""Pre-rating answers for reviewers (qa.judge): the verdict read from a reply, the prompt, the backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from answer_testkit import FakeOpenAIServer, KeywordRetriever, fake_chat
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from qa.chain import AnswerChain
from qa.judge import AnswerJudge, make_judge, parse_verdict
from settings import Settings


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Verdict: Good\nReason: Excerpt [1] gives the flag.", ("good", "Excerpt [1] gives the flag.")),
        (
            "**Verdict:** Bad\n**Reason:** it says --port, the excerpts say -p",
            ("bad", "it says --port, the excerpts say -p."),
        ),
        ("verdict = bad. reason - wrong tag", ("bad", "wrong tag.")),
        ("Bad. The answer invents a setting.", ("bad", "The answer invents a setting.")),
        ("Good", ("good", "")),
    ],
)
def test_the_verdict_and_reason_are_read_from_the_ways_models_write_them(reply: str, expected: tuple) -> None:
    assert parse_verdict(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "The documentation doesn't seem to cover this.",  # the tiny model answers instead of judging
        "It is a goodly answer",
        "",
    ],
)
def test_a_reply_without_a_verdict_is_no_pre_rating_not_a_guess(reply: str) -> None:
    assert parse_verdict(reply) is None
    judge = AnswerJudge(FakeListChatModel(responses=[reply or "-"]))
    assert judge.rate("q", "a", "[1] x") is None


def test_a_long_reason_is_cut() -> None:
    verdict, reason = parse_verdict("Verdict: Bad\nReason: " + "word " * 200) or ("", "")
    assert verdict == "bad" and len(reason) <= 400 and reason.endswith("…")


def test_the_judge_reads_the_excerpts_the_question_and_the_answer_over_http(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]
) -> None:
    # the snapshot the server says answered
    openai_server.complete("Verdict: Bad\nReason: [1] says -p, not --port.", model="judge-2026-01-01")
    settings = settings_for(
        openai_base_url=openai_server.url, openai_api_key="k", openai_model="answerer", pre_rate_model="judge"
    )

    rating = make_judge(settings).rate(
        "how do I change the port?",
        "Use --port 9000 [1].",
        "[1] docs/start.md — Start > Ports\nRun `label-studio start -p 9000`.",
    )

    assert rating is not None
    assert (rating.verdict, rating.reason) == ("bad", "[1] says -p, not --port.")
    assert (rating.model, rating.prompt_version) == ("judge-2026-01-01", "judge-v1")
    (request,) = openai_server.requests
    sent = request["json"]
    assert sent["model"] == "judge" and not sent.get("stream")  # PRE_RATE_MODEL, one whole reply
    system, user = sent["messages"]
    assert "Verdict: Good or Bad" in system["content"]
    assert "Run `label-studio start -p 9000`." in user["content"]
    assert "Question: how do I change the port?" in user["content"]
    assert user["content"].endswith("Answer to check:\nUse --port 9000 [1].")


def test_pre_rating_is_on_unless_the_bundled_local_model_answers(
    settings_for: Callable[..., Settings],
) -> None:
    assert not settings_for().pre_rates  # auto, local model: it gives no verdicts
    assert settings_for(openai_api_key="k").pre_rates
    assert settings_for(openai_base_url="http://127.0.0.1:1/v1").pre_rates
    assert settings_for(pre_rate="on").pre_rates
    assert not settings_for(openai_api_key="k", pre_rate="off").pre_rates


def test_the_judge_is_given_the_excerpts_the_answering_model_read(
    retriever: KeywordRetriever, settings: Settings
) -> None:
    answering = fake_chat("Pass `--no-browser` [1].")
    answer = AnswerChain(retriever, answering, settings, compact=False).answer("start without a browser")
    assert answer.context and answer.context in answering.prompts[0][-1].content
    judging = fake_chat("Verdict: Good\nReason: [1] names the flag.")

    rating = AnswerJudge(judging).rate(answer.standalone_question, answer.text, answer.context)

    assert rating is not None and rating.verdict == "good"
    prompt = judging.prompts[0][-1].content
    assert answer.context in prompt and "Pass `--no-browser` [1]." in prompt
    silent = AnswerChain(retriever, fake_chat(), settings).answer("zebra quantum")  # abstains: no model
    assert silent.abstained and silent.context == ""
