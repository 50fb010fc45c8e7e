"""The loop in a real browser against a real Label Studio: a user's thumb and a Review-tab verdict
reach Label Studio, and a Label Studio reviewer's change comes back to the Review tab."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from feedback_testkit import ROOT, LabelStudioServer, wait_for

sys.path.insert(0, str(ROOT / "tests" / "app"))
from appkit import WEB, fake_llm, make_docs_repo, serve  # noqa: E402
from test_browser import ask, page  # noqa: E402, F401 - the browser fixture

from settings import Settings, get_settings  # noqa: E402

GOOD = [{"from_name": "rating", "to_name": "answer", "type": "choices", "value": {"choices": ["Good"]}}]
WRONG_PASSAGES = "Wrong passages: the sources don't answer it"
QUESTION = "How do I start without opening a browser tab?"


def test_thumb_and_review_tab_verdict_reach_label_studio_and_its_reviewer_is_heard_back(
    ls_settings: Settings,
    label_studio: LabelStudioServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    page,  # noqa: ANN001, F811
) -> None:
    from app import build_context
    from ingest import run_ingest

    monkeypatch.setenv("DOCS_WEB_BASE", WEB)
    run_ingest(get_settings(), repo=str(make_docs_repo(tmp_path / "docs")), progress=False)
    # Served on PUBLIC_URL's port: Label Studio's webhook reaches this app.
    settings = get_settings(port=int(ls_settings.app_url.rsplit(":", 1)[1]))
    ctx = build_context(settings, llm=fake_llm())
    title = settings.label_studio_project
    with serve(ctx) as url:
        ask(page, url, QUESTION)
        page.get_by_text("so no tab opens", exact=False).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Like").last.click()
        (task,) = wait_for(
            lambda: label_studio.tasks(title) if label_studio.project_id(title) else [], timeout=30
        )
        exchange_id = task.data["exchange_id"]
        assert task.data["user_rating"] == "good" and not task.annotations

        page.get_by_role("tab", name="Review").click()
        cell = page.locator("#exchanges-table").get_by_text(QUESTION).locator("visible=true").first
        cell.click()
        wait_for(
            lambda: page.locator("#review-id textarea, #review-id input").first.input_value() == exchange_id
        )
        page.locator("#review-verdict").get_by_label("bad").check()
        page.locator("#review-problems").get_by_label(WRONG_PASSAGES).check()  # shown for a bad verdict
        page.locator("#review-comment textarea, #review-comment input").first.fill("Misses the -p flag")
        page.get_by_role("button", name="Save verdict").click()
        page.get_by_text("Label Studio gets it as an annotation", exact=False).first.wait_for(timeout=10_000)
        page.locator("#exchanges-table").get_by_text("app reviewer (Review tab)").locator(
            "visible=true"
        ).wait_for(timeout=10_000)

        def annotations() -> list:
            (task,) = label_studio.tasks(title)
            return task.annotations

        (annotation,) = wait_for(annotations, timeout=30)
        assert [(r["from_name"], r["value"]) for r in annotation["result"]] == [
            ("rating", {"choices": ["Bad"]}),
            ("problems", {"choices": [WRONG_PASSAGES]}),
            ("comment", {"text": ["Misses the -p flag"]}),
        ]
        exchange = ctx.log.get(exchange_id)
        assert (exchange.user_rating, exchange.reviewer_rating, exchange.reviewer) == (
            "good",
            "bad",
            "app reviewer",
        )
        assert exchange.reviewer_problems == ("wrong_sources",)

        # A reviewer in Label Studio says it is incomplete rather: that comes back too.
        incomplete = [
            {**annotation["result"][0]},
            {
                "from_name": "problems",
                "to_name": "answer",
                "type": "choices",
                "value": {"choices": ["Incomplete"]},
            },
        ]
        label_studio.client().annotations.update(id=annotation["id"], result=incomplete)
        wait_for(lambda: ctx.log.get(exchange_id).reviewer_problems == ("incomplete",), timeout=15)
        assert ctx.log.get(exchange_id).reviewer_rating == "bad"

        # A reviewer in Label Studio disagrees: the webhook brings it back, the Review tab shows it.
        label_studio.client().annotations.update(id=annotation["id"], result=GOOD)
        wait_for(lambda: ctx.log.get(exchange_id).reviewer_rating == "good", timeout=15)
        table = page.locator("#exchanges-table")  # one answer: its user, reviewer, verdict and sync cells

        def shown(text: str) -> int:
            return table.get_by_text(text, exact=True).locator("visible=true").count()

        def refreshed() -> bool:  # the webhook names the reviewer by id; a pull 2 s later by name
            page.get_by_role("button", name="Refresh").click()
            page.wait_for_timeout(500)
            return shown("admin@example.com (Label Studio)") == 1

        wait_for(refreshed, timeout=20, interval=0.5)
        assert (shown("bad"), shown("good"), shown("in Label Studio")) == (0, 3, 1)
        reviewer_events = [e for e in ctx.log.history(exchange_id) if e.kind == "reviewer"]
        assert [(e.source, e.rating, e.problems) for e in reviewer_events] == [
            ("inline", "bad", ("wrong_sources",)),
            ("webhook", "bad", ("incomplete",)),
            ("webhook", "good", ()),
        ]
