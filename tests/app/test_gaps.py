"""What the docs don't answer: the failed questions of the log, grouped by need, in the Review tab and a shell."""

from __future__ import annotations

import io

import pytest
from gradio_client import Client

from app import gaps_command
from ui.gaps import docs_gaps

SILENT = [  # one need in three wordings, each found the docs silent (newest last)
    "can annotators log in with their Discord account?",
    "how do annotators sign in with discord?",
    "can my annotators sign in with Discord?",
]


@pytest.fixture(scope="module")
def logged(running_app):  # noqa: ANN001, ANN201
    log = running_app.ctx.log
    for n, question in enumerate(SILENT):
        log.record_exchange(
            question=question,
            answer="The docs don't cover this.",
            prompt_version="abstain-v1",
            retrieved=[{"source": "guide/webhooks.md", "section": "Webhooks > Events"}],
            time=f"2026-11-2{n}T10:00:00+00:00",
        )
    bad = log.record_exchange(
        question="what units are exported image coordinates in?",
        answer="Pixels [1].",
        prompt_version="answer-v2",
        retrieved=[{"source": "guide/export.md", "section": "Export annotations > Units"}],
        time="2026-11-21T11:00:00+00:00",
    )
    log.review(bad, "bad", "they are percentages, not pixels", reviewer="ana", source="inline")
    good = log.record_exchange(
        question="how do I start without a browser tab?",
        answer="--no-browser [1].",
        prompt_version="answer-v2",
    )
    log.review(good, "good", "", reviewer="ana", source="inline")
    # Not the docs' fault, by what the reviewer ticked: the model's wording, and a false "docs are silent".
    worded = log.record_exchange(question="which port is the default?", answer="8080, probably, maybe.")
    log.review(worded, "bad", "", reviewer="ana", problems=["unclear"])
    missed = log.record_exchange(
        question="how do I export to COCO?", answer="The docs don't cover this.", prompt_version="abstain-v1"
    )
    log.review(missed, "bad", "the export page has it", reviewer="ana", problems=["false_abstain"])
    return running_app


def test_the_failed_questions_are_grouped_by_need_most_asked_first(logged) -> None:  # noqa: ANN001
    gaps, scanned = docs_gaps(logged.ctx)
    assert scanned >= 5
    newest_first = [[e.question for e in g.exchanges] for g in gaps]
    assert newest_first[0] == SILENT[::-1]  # three wordings of one need: one group, its newest first
    assert ["what units are exported image coordinates in?"] in newest_first
    assert not any("start without a browser" in q for g in newest_first for q in g)  # approved: no gap
    asked = {q for g in newest_first for q in g}
    assert "which port is the default?" not in asked and "how do I export to COCO?" not in asked
    assert (gaps[0].silent, gaps[0].rated_bad, gaps[0].closest) == (
        3,
        0,
        "guide/webhooks.md › Webhooks > Events",
    )


def test_a_maintainer_reads_them_in_a_shell_and_a_reviewer_in_the_review_tab(logged) -> None:  # noqa: ANN001
    out = io.StringIO()
    assert gaps_command(logged.ctx, [], out) == 0
    text = out.getvalue()
    assert "found the docs silent and 1 was rated bad" in text
    assert (
        "1. 3× “can my annotators sign in with Discord?” (silent 3); also asked as "
        "“how do annotators sign in with discord?”; “can annotators log in with their Discord account?”. "
        "Closest page: guide/webhooks.md › Webhooks > Events"
    ) in text
    assert (
        "1× “what units are exported image coordinates in?” (rated bad 1). Closest page: guide/export.md › "
        "Export annotations > Units. Said: “they are percentages, not pixels”"
    ) in text
    out = io.StringIO()
    assert gaps_command(logged.ctx, ["--since", "2099-01-01"], out) == 0
    assert "none found the docs silent or was rated bad" in out.getvalue()
    assert gaps_command(logged.ctx, ["--since", "last tuesday"], io.StringIO()) == 2

    shown = Client(logged.url, verbose=False).predict(api_name="/docs_gaps")
    assert shown.startswith("**What the docs don't answer.**")
    assert "3× “can my annotators sign in with Discord?”" in shown
