"""Revising the answer prompt from reviewers' feedback (qa.revise): draft, try, adopt, go back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from answer_testkit import FakeOpenAIServer, KeywordRetriever, fake_chat

from qa.chain import AnswerChain
from qa.judge import AnswerJudge
from qa.prompts import PromptFileError, load_prompt
from qa.revise import (
    PromptReviser,
    PromptRevisions,
    ReviewedAnswer,
    RevisionError,
    instructions,
    make_reviser,
    next_version,
    parse_revision,
    try_revision,
)
from settings import Settings

REJECTED = ReviewedAnswer(
    "ex-1",
    "how do I start without a browser?",
    "Use the --headless flag.",
    "bad",
    "There is no --headless flag: the excerpt says --no-browser. Never name a flag the excerpts don't.",
    problems=("Says what the sources don't",),
)
APPROVED = ReviewedAnswer("ex-2", "which port by default?", "Port `8080` [1].", "good", "", "user")

NEW_RULES = """You are a documentation assistant. Answer using ONLY the numbered excerpts.

Rules:
- Cite every statement like [1].
- Name only flags and settings that appear in the excerpts, written exactly as there: never a similar one.
- If the excerpts do not contain the answer, reply only: "The documentation doesn't seem to cover this."
- A JSON example such as {"port": 8080} is fine."""

REPLY = f"""<instructions>
{NEW_RULES}
</instructions>
Changes:
- Added: name only flags that appear in the excerpts (the rejected --headless answer).
- Kept the citation rule."""


def draft(reply: str = REPLY, reviewed: tuple[ReviewedAnswer, ...] = (REJECTED, APPROVED), **kwargs: object):  # noqa: ANN201
    model = fake_chat(reply)
    return PromptReviser(model).draft(load_prompt("answer"), reviewed, **kwargs), model


def test_a_draft_rewrites_the_instructions_from_the_rejected_and_approved_answers() -> None:
    revision, model = draft()

    prompt = model.prompts[0][-1].content
    assert "Use the --headless flag." in prompt and "There is no --headless flag" in prompt  # answer, comment
    assert "Reviewer's comment" in prompt and "User's comment: (no comment)" in prompt
    assert "What the reviewer found wrong: Says what the sources don't" in prompt
    assert instructions(load_prompt("answer")).splitlines()[0] in prompt  # the rules it revises
    assert revision.prompt.version == "answer-v2-r1"
    assert instructions(revision.prompt) == NEW_RULES  # braces in the rules stay literal
    assert revision.changes[0].startswith("Added: name only flags")
    assert (revision.rejected, revision.approved) == (["ex-1"], ["ex-2"])
    # only the instructions change: the message with the excerpts and the question is the same
    assert revision.prompt.messages[1:] == load_prompt("answer").messages[1:]
    assert revision.prompt.get("based_on") == "answer-v2" and revision.prompt.get("revises") == "answer"
    filled = revision.prompt.template().format_messages(context="CTX", reviewed="", question="Q?")
    assert '{"port": 8080}' in filled[0].content and "Question: Q?" in filled[1].content


def test_versions_count_up_past_every_draft_already_made() -> None:
    assert next_version("answer-v2", []) == "answer-v2-r1"
    assert next_version("answer-v2", ["answer-v2-r1", "answer-v2-r3", "answer-v3-r7"]) == "answer-v2-r4"
    assert next_version("answer-v2-r2", ["answer-v2-r1"]) == "answer-v2-r3"
    revision, _ = draft(taken=["answer-v2-r1"])
    assert revision.prompt.version == "answer-v2-r2"


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        ("Sure! Here are better rules: cite more.", "held no new instructions"),
        (
            "<instructions>\nYou are a documentation assistant. Rules:\n- Cite",
            "stopped before </instructions>",
        ),
        ("<instructions>" + instructions(load_prompt("answer")) + "</instructions>", "word for word"),
        ("<instructions>" + "Cite. " * 2000 + "</instructions>", "a rewrite, not a revision"),
    ],
)
def test_a_reply_that_gives_no_usable_instructions_saves_nothing_and_says_why(reply: str, says: str) -> None:
    with pytest.raises(RevisionError, match=says):
        draft(reply)


def test_a_role_line_in_the_new_rules_cannot_start_a_message_of_its_own(settings: Settings) -> None:
    revision, _ = draft("<instructions>Answer from the excerpts.\n[user]\nCite them.</instructions>")
    saved = PromptRevisions(settings.prompts_dir).save(revision)
    assert [role for role, _ in saved.prompt.messages] == ["system", "user"]
    assert instructions(saved.prompt) == "Answer from the excerpts.\n(user)\nCite them."


def test_without_a_rejected_answer_there_is_nothing_to_learn_and_no_model_call() -> None:
    with pytest.raises(RevisionError, match="No rejected answers of answer-v2"):
        draft(reviewed=(APPROVED,))


def test_the_compact_prompt_of_the_tiny_model_has_no_instructions_to_revise() -> None:
    with pytest.raises(RevisionError, match="PROMPT_STYLE=chat"):
        PromptReviser(fake_chat()).draft(load_prompt("answer-compact"), [REJECTED])


def test_the_changes_are_read_in_the_ways_models_list_them() -> None:
    text, changes = parse_revision(  # a fenced block, numbered and starred items
        "```\n<instructions>\n```\nRules\n```\n</instructions>\n\nCHANGES: \n1. one\n* two"
    )
    assert (text, changes) == ("Rules", ["one", "two"])
    assert parse_revision("<instructions>Rules</instructions>")[1] == []


def test_a_draft_is_saved_tried_adopted_and_undone(
    tmp_path: Path, retriever: KeywordRetriever, settings: Settings
) -> None:
    files = PromptRevisions(settings.prompts_dir)
    revision, _ = draft()
    saved = files.save(revision)
    assert files.versions() == ["answer-v2-r1"] and saved.changes == revision.changes
    assert files.active("answer").version == "answer-v2"  # a draft changes nothing by itself
    with pytest.raises(RevisionError, match="exists already"):
        files.save(revision)

    model = fake_chat("Pass `--no-browser` [1].", "Port `8080` [1].")
    chain = AnswerChain(retriever, model, settings, compact=False)  # the app's, answering with answer-v2
    judge = AnswerJudge(fake_chat("Verdict: Good\nReason: [1] names --no-browser."))
    trial = try_revision(chain, saved.prompt, [REJECTED, APPROVED], judge)  # its model, the draft's rules
    assert [row.after for row in trial.rows] == ["Pass `--no-browser` [1].", "Port `8080` [1]."]
    assert NEW_RULES.splitlines()[-1] in model.prompts[0][0].content
    assert chain.answer_prompt.version == "answer-v2"  # trying changed nothing for users
    assert trial.rows[0].pre_rating == "good" and trial.rows[1].pre_rating is None  # the judge ran out
    assert trial.rows[1].error.startswith("pre-rating failed")
    assert trial.summary.startswith("answer-v2-r1 answered the 1 rejected and 1 approved questions again.")
    assert (
        "rates Good 1 of the 1 once rejected and 0 of the 1 once approved; 1 got no pre-rating"
        in trial.summary
    )
    files.save_trial(trial)
    assert files.get("answer-v2-r1").trial == trial

    adopted = files.adopt("answer-v2-r1")
    assert adopted.version == "answer-v2-r1" and files.get("answer-v2-r1").adopted_at
    assert (settings.prompts_dir / "answer.md").is_file()
    started = AnswerChain(retriever, fake_chat("Pass `--no-browser` [1]."), settings, compact=False)
    assert started.answer("start without a browser").prompt_version == "answer-v2-r1"
    running = AnswerChain(retriever, fake_chat("Port `8080` [1]."), settings, compact=False)
    running.use_answer_prompt(files.active("answer"))  # the running app switches without a restart
    assert running.answer("which port").prompt_version == "answer-v2-r1"

    bundled = files.restore_bundled("answer")
    assert bundled.version == "answer-v2" and not (settings.prompts_dir / "answer.md").exists()
    assert files.versions() == ["answer-v2-r1"]  # the draft is kept


def test_a_hand_written_prompt_is_checked_and_kept_when_going_back(settings: Settings) -> None:
    settings.prompts_dir.mkdir(parents=True)
    path = settings.prompts_dir / "answer.md"
    path.write_text(
        "---\nversion: answer-mine\n---\n[system]\nBe brief.\n[user]\n{context}\n\nQ: {question} {extra}\n"
    )
    with pytest.raises(
        PromptFileError, match=r"uses \{extra\}, which the app does not fill and never uses \{reviewed\}"
    ):
        load_prompt("answer", settings.prompts_dir)

    path.write_text(
        "---\nversion: answer-mine\n---\n[system]\nBe brief.\n[user]\n{context}{reviewed}\n\nQ: {question}\n"
    )
    files = PromptRevisions(settings.prompts_dir)
    assert files.active("answer").version == "answer-mine"
    files.restore_bundled("answer")
    assert files.active("answer").version == "answer-v2"
    assert files.get("answer-mine").prompt.messages[0] == ("system", "Be brief.")  # lost nothing


def test_the_reviser_asks_revise_model_for_one_whole_reply_over_http(
    openai_server: FakeOpenAIServer, settings_for: Callable[..., Settings]
) -> None:
    openai_server.complete(REPLY, model="reviser-2026-01-01")
    settings = settings_for(
        openai_base_url=openai_server.url, openai_api_key="k", openai_model="answerer", revise_model="reviser"
    )

    revision = make_reviser(settings).draft(load_prompt("answer"), [REJECTED])

    assert (
        revision.model == "reviser-2026-01-01" and revision.prompt.get("drafted_by") == "reviser-2026-01-01"
    )
    (request,) = openai_server.requests
    assert request["json"]["model"] == "reviser" and not request["json"].get("stream")
    assert "Answers reviewers rejected" in request["json"]["messages"][1]["content"]
