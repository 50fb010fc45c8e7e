"""Prompt files: each carries a version and fills with the numbered context."""

from __future__ import annotations

from pathlib import Path

import pytest
from answer_testkit import DOCS

from qa.prompts import (
    PROMPT_DIR,
    PromptFileError,
    _parse,
    focus_context,
    format_context,
    load_prompt,
    select_context,
)


@pytest.mark.parametrize("path", sorted(PROMPT_DIR.glob("*.md")), ids=lambda p: p.name)
def test_every_prompt_file_has_a_version_and_messages(path: Path) -> None:
    spec = load_prompt(path.stem)
    assert spec.version.startswith(path.stem.split("-")[0] + "-")
    assert spec.messages


def test_answer_prompt_asks_for_citations_and_honesty() -> None:
    system, _user = load_prompt("answer").messages
    assert system[0] == "system" and "ONLY" in system[1] and "[1]" in system[1]
    assert "doesn't seem to cover" in system[1]
    messages = load_prompt("answer").template().format_messages(context="CTX", reviewed="", question="Q?")
    assert messages[-1].content.endswith("CTX\n\nQuestion: Q?")
    assert "reviewer's verdict on an earlier answer" in system[1]  # how to read one when it follows


def test_context_is_numbered_with_file_and_section() -> None:
    text = format_context(DOCS[:2])
    assert text.startswith("[1] docs/start.md — Start Label Studio > Command line arguments\n| `-b`")
    assert (
        "\n\n[2] docs/webhooks.md — Webhooks > Troubleshoot a webhook connection\nWebhook connections" in text
    )


def test_context_budget_keeps_the_best_chunks() -> None:
    assert select_context(DOCS, 10, max_chars=10_000) == DOCS
    kept = select_context(DOCS, 10, max_chars=len(DOCS[0].page_content) + 10)
    assert kept == DOCS[:1]
    cut = select_context(DOCS, 10, max_chars=20)
    assert len(cut) == 1 and len(cut[0].page_content) == 20  # the best chunk is always kept, cut


def test_focus_context_keeps_the_matching_table_row_and_sentence() -> None:
    text, used = focus_context("how do I stop it opening a browser", DOCS, max_chars=300)
    assert text == DOCS[0].page_content.splitlines()[0]
    assert used == [0]
    text, used = focus_context("raise the webhook timeout", DOCS, max_chars=800)
    assert "`WEBHOOK_TIMEOUT`" in text and used == [1]


def test_a_prompt_file_without_version_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\ndescription: x\n---\n[user]\n{question}\n")
    with pytest.raises(PromptFileError, match="no 'version"):
        _parse(bad)
    bad.write_text("[user]\n{question}\n")
    with pytest.raises(PromptFileError, match="front matter"):
        _parse(bad)
