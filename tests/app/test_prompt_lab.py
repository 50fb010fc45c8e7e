"""Reviewers' feedback revises the answer prompt: drafted, tried, adopted and undone in the served app."""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

from appkit import FakeChat, fake_llm, free_port, serve
from gradio_client import Client
from langchain_core.messages import AIMessage
from playwright.sync_api import expect
from test_browser import page  # noqa: F401 - the browser fixture
from test_review import table_rows

NEW_RULES = (
    "You are a documentation assistant. Answer using ONLY the numbered excerpts, citing them like [1].\n"
    "- Give the exact command from the excerpts, in backticks, before anything else.\n"
    '- If the excerpts do not answer, reply only: "The documentation doesn\'t seem to cover this."'
)
REVISION = (
    f"<instructions>\n{NEW_RULES}\n</instructions>\nChanges:\n- Lead with the exact command (ana's comment)."
)


def shown(markdown: str) -> str:
    """Markdown as the page shows it (without the backslashes that keep model text literal)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def repeating(reply: str) -> FakeChat:
    return FakeChat(messages=itertools.cycle([AIMessage(reply)]))


def start_app(app_data, monkeypatch, reviser: FakeChat):  # noqa: ANN001, ANN201
    monkeypatch.setenv("DATA_DIR", str(app_data))
    for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    from app import build_context
    from settings import get_settings

    judge = repeating("Verdict: Good\nReason: [1] gives the command.")
    settings = get_settings(port=free_port(), pre_rate="on", prompt_style="chat")
    return build_context(settings, llm=fake_llm(), judge_llm=judge, revise_llm=reviser)


def test_a_revision_drafted_from_rejected_answers_is_tried_adopted_and_undone(app_data, monkeypatch) -> None:
    ctx = start_app(app_data, monkeypatch, repeating(REVISION))
    log = ctx.log
    with serve(ctx) as url:
        client = Client(url, verbose=False)
        for question in (
            "which units are exported coordinates in?",
            "how do I start without a browser tab?",
            "what are webhooks sent on?",
        ):
            client.predict(question, [], api_name="/ask")
        rejected, approved = (e.id for e in log.recent(2))
        log.review(rejected, "bad", "Say the command first: --no-browser.", reviewer="ana", source="inline")
        log.review(approved, "good", "", reviewer="ana", source="inline")
        # Rejected for the passages found alone: no rule of the prompt's would have helped.
        passages = log.recent(3)[-1].id
        log.review(passages, "bad", "It cites the wrong page.", reviewer="ana", problems=["wrong_sources"])

        status, _, about, diff, trial = client.predict(None, api_name="/draft_prompt")
        status, about = shown(status), shown(about)

        assert (
            "Answers use **answer-v2** (bundled" in status
            and "1 rejected (1 with a comment), 1 approved; 2 of them judged by reviewers" in status
        )
        assert "1 more left out, rejected for the passages found" in status
        assert "from 1 rejected and 1 approved answers" in about  # not shown to the reviser
        assert "answer-v2-r1" in about and "Lead with the exact command" in about
        assert "+- Give the exact command from the excerpts" in diff and "-Rules:" in diff
        assert ctx.chain.answer_prompt.version == "answer-v2"  # a draft changes nothing for users

        _, _, about, _, trial = client.predict("answer-v2-r1", api_name="/try_prompt")
        about = shown(about)

        rows = table_rows(trial)
        assert [row[1] for row in rows] == ["bad", "good"]  # the rejected question first
        assert all(row[5].startswith("good: [1] gives the command") for row in rows)
        assert "The judge (generic-fake-chat-model) rates Good 1 of the 1 once rejected" in about
        assert len(log.recent(0)) == 3  # the trial's answers are not users' answers

        status = shown(client.predict("answer-v2-r1", api_name="/adopt_prompt")[0])

        assert "Answers use **answer-v2-r1** (a revision of answer-v2, adopted" in status
        client.predict("how do I start without a browser tab, again?", [], api_name="/ask")
        assert log.recent(1)[0].prompt_version == "answer-v2-r1"  # accuracy per prompt version follows it
        assert (app_data / "prompts" / "answer.md").is_file()  # and so does the next start

        status = shown(client.predict("answer-v2-r1", api_name="/restore_prompt")[0])

        assert "Answers use **answer-v2** (bundled" in status
        client.predict("what are webhooks sent on, again?", [], api_name="/ask")
        assert log.recent(1)[0].prompt_version == "answer-v2"
    ctx.close()


def test_a_reply_without_new_instructions_saves_no_draft_and_the_page_says_why(
    app_data,
    monkeypatch,
    page,  # noqa: F811
) -> None:
    ctx = start_app(app_data, monkeypatch, repeating("You should cite more."))
    rejected = ctx.log.record_exchange(question="q", answer="a", prompt_version="answer-v2")
    ctx.log.review(rejected, "bad", "wrong", reviewer="ana", source="inline")
    shutil.rmtree(
        app_data / "prompts" / "revisions", ignore_errors=True
    )  # no draft yet (the data dir is shared)
    before = sorted((app_data / "prompts" / "revisions").glob("*.md"))
    with serve(ctx) as url:
        page.goto(url)
        page.get_by_role("tab", name="Review").click()
        page.get_by_text("Improve the answer prompt from reviewers' feedback").click()
        status = page.locator("#prompt-status")
        expect(status).to_contain_text("Answers use answer-v2", timeout=30_000)
        try_it = page.get_by_role("button", name="Try it on the reviewed questions")
        adopt = page.get_by_role("button", name="Adopt it", exact=False)
        expect(try_it).to_be_disabled()  # nothing to try or adopt yet
        expect(adopt).to_be_disabled()
        expect(page.get_by_role("button", name="Go back to the bundled prompt")).to_be_disabled()  # on it
        expect(
            page.get_by_role("button", name="Draft a revision")
        ).to_be_enabled()  # a rejection to learn from
        page.get_by_role("button", name="Draft a revision").click()
        expect(page.get_by_text("held no new instructions", exact=False).first).to_be_visible(timeout=30_000)
        assert sorted((app_data / "prompts" / "revisions").glob("*.md")) == before
        expect(try_it).to_be_disabled()

        # A draft written meanwhile (from the command line, say) is listed at the next action
        bundled = (Path(__file__).parents[2] / "qa" / "prompts" / "answer.md").read_text()
        draft = app_data / "prompts" / "revisions" / "answer-v2-r9.md"
        draft.parent.mkdir(parents=True, exist_ok=True)
        draft.write_text(bundled.replace("version: answer-v2", "version: answer-v2-r9", 1))
        page.get_by_role("button", name="Draft a revision").click()
        expect(try_it).to_be_enabled(timeout=30_000)
        expect(adopt).to_be_enabled()
    ctx.close()


def test_a_broken_prompt_file_is_named_and_going_back_to_the_bundled_one_answers_again(
    app_data, monkeypatch
) -> None:
    broken = app_data / "prompts" / "answer.md"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("---\nversion: answer-mine\n---\n[system]\nBe brief.\n[user]\n{question}\n")
    ctx = start_app(app_data, monkeypatch, repeating(REVISION))
    assert ctx.chain is None and "never uses {context}, {reviewed}" in ctx.problem  # said, not a crash
    with serve(ctx) as url:
        client = Client(url, verbose=False)

        status = shown(client.predict(None, api_name="/restore_prompt")[0])

        assert "Answers use **answer-v2** (bundled" in status
        assert ctx.chain is not None and not broken.exists()
        kept = app_data / "prompts" / "revisions" / "answer-mine.md"
        assert "Be brief." in kept.read_text()  # the hand-written file is kept among the drafts
        client.predict("how do I start without a browser tab?", [], api_name="/ask")
        assert ctx.log.recent(1)[0].prompt_version == "answer-v2"
    ctx.close()


def test_the_same_steps_from_the_command_line_reach_a_running_app(app_data, monkeypatch, capsys) -> None:
    from app import prompt_command

    running = start_app(app_data, monkeypatch, repeating(REVISION))  # the app, serving
    shell = start_app(app_data, monkeypatch, repeating(REVISION))  # `python app.py prompt …` beside it
    rejected = shell.log.record_exchange(
        question="how do I start without a tab?", answer="Run it.", prompt_version="answer-v2"
    )
    shell.log.review(rejected, "bad", "Give the --no-browser flag.", reviewer="ana", source="inline")

    assert prompt_command(shell, ["draft"]) == 0
    said = capsys.readouterr().out
    version = re.search(r"^(answer-v2-r\d+), a revision of answer-v2", said, re.MULTILINE)
    assert version, said
    version = version.group(1)
    assert "- Lead with the exact command (ana's comment)." in said and "+- Give the exact command" in said
    assert "\\" not in said and "**" not in said  # text for a terminal, not the page's Markdown

    assert prompt_command(shell, ["try", version]) == 0
    said = capsys.readouterr().out
    assert "- was bad, now good: how do I start without a tab?" in said and "The judge" in said

    assert prompt_command(shell, ["adopt", version]) == 0
    assert f"Answers use {version} from the next question on." in capsys.readouterr().out
    running.refresh()  # what each page load and question does
    assert running.chain.answer("how do I start without a browser tab?").prompt_version == version

    assert prompt_command(shell, ["status"]) == 0
    said = capsys.readouterr().out
    assert f"Answers use {version} (a revision of answer-v2, adopted" in said
    assert f"  {version} (revises answer-v2, adopted " in said

    assert prompt_command(shell, ["try", "answer-v9-r9"]) == 2  # a draft that does not exist
    assert "error: " in capsys.readouterr().err
    assert prompt_command(shell, ["restore"]) == 0
    assert "Answers use the bundled answer-v2 again; the drafts are kept." in capsys.readouterr().out
    assert prompt_command(shell, ["restore"]) == 0
    assert "Answers already use the bundled answer-v2: nothing to go back from." in capsys.readouterr().out
    running.refresh()
    assert running.chain.answer("how do I start without a browser tab?").prompt_version == "answer-v2"
    shell.close()
    running.close()
