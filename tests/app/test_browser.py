"""One real browser (Debian's chromium, headless) driving the chat: ask, read, thumbs down, comment."""

from __future__ import annotations

import shutil
import tempfile
import time

import pytest
from appkit import WEB, fake_llm, free_port, serve

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture
def page():
    with playwright.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_ask_see_streamed_answer_and_source_then_rate_with_comment(running_app, page) -> None:
    page.goto(running_app.url)
    box = page.get_by_label("Your question")
    box.wait_for(timeout=30_000)
    box.fill("How do I start without opening a browser tab?")
    page.get_by_role("button", name="Ask", exact=True).click()
    try:
        page.get_by_text("so no tab opens", exact=False).first.wait_for(timeout=30_000)
    finally:
        page.screenshot(path=str(running_app.ctx.settings.data_dir / "browser-chat.png"))
    link = page.locator(f'a[href^="{WEB}/blob/"]').first
    link.wait_for(timeout=30_000)
    assert "guide/start.md" in link.inner_text()

    page.get_by_role("button", name="Dislike").last.click()
    comment = page.get_by_label("Anything to add?", exact=False)
    comment.wait_for(state="visible", timeout=10_000)
    comment.fill("It should mention the -p flag too.")
    page.get_by_role("button", name="Send comment").click()
    comment.wait_for(state="hidden", timeout=10_000)

    exchange = running_app.ctx.log.recent(1)[0]
    history = running_app.ctx.log.history(exchange.id)
    assert history[-1].rating == "bad"
    assert "-p flag" in (history[-1].comment or "")


def test_a_thumb_given_while_the_answer_streams_counts_once_it_is_complete(
    app_data, page, monkeypatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(app_data))
    from app import build_context
    from qa.chain import AnswerChain
    from qa.retrieval import open_retriever
    from settings import get_settings

    settings = get_settings(port=free_port())
    slow = fake_llm(delay=0.4)  # a word every 0.4 s
    ctx = build_context(settings, chain=AnswerChain(open_retriever(settings), llm=slow, settings=settings))
    with serve(ctx) as url:
        page.goto(url)
        box = page.get_by_label("Your question")
        box.wait_for(timeout=30_000)
        question = "Can I start it so that no browser tab opens at all?"
        box.fill(question)
        page.get_by_role("button", name="Ask", exact=True).click()
        page.get_by_role("button", name="Like").last.click(timeout=10_000)  # on the answer being written
        page.get_by_text("saved as soon as the answer is complete", exact=False).first.wait_for(timeout=5_000)
        page.get_by_text("so no tab opens", exact=False).first.wait_for(timeout=30_000)

        def ours():  # noqa: ANN202
            latest = ctx.log.recent(1)
            return latest[0] if latest and latest[0].question == question else None

        deadline = time.time() + 10
        while time.time() < deadline and not (ours() and ours().user_rating):
            time.sleep(0.1)
        assert ours() is not None and ours().user_rating == "good"


def ask(page, url: str, question: str) -> None:  # noqa: ANN001
    page.goto(url)
    box = page.get_by_label("Your question")
    box.wait_for(timeout=30_000)
    box.fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()


def test_an_answer_cut_inside_a_code_block_shows_its_sources_below_it(app_data, page, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(app_data))
    from app import build_context
    from qa.chain import AnswerChain
    from qa.retrieval import open_retriever
    from settings import get_settings

    settings = get_settings(port=free_port())
    cut = (
        "Start it like this [1]:\n\n```bash\nlabel-studio start --no-browser --port"  # cut at the token limit
    )
    chain = AnswerChain(open_retriever(settings), llm=fake_llm(answer=cut), settings=settings)
    with serve(build_context(settings, chain=chain)) as url:
        ask(page, url, "How do I start without opening a browser tab?")
        link = page.locator(f'a[href^="{WEB}/blob/"]').first
        link.wait_for(timeout=30_000)
        code = page.locator("#chatbot pre").last
        assert "label-studio start --no-browser" in code.inner_text()
        assert "guide/start.md" not in code.inner_text()
        assert link.evaluate("a => !a.closest('pre, code')")  # a link, not text in the code block
        heading = page.locator("#chatbot strong").filter(has_text="sources").last
        assert heading.evaluate("e => !e.closest('pre, code')")  # bold, not ** in the code block


def test_a_rating_shows_users_a_neutral_line_not_label_studios_problems(app_data, page, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(app_data))
    from app import build_context
    from qa.chain import AnswerChain
    from qa.retrieval import open_retriever
    from settings import get_settings

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = get_settings(port=free_port(), label_studio_url=down, label_studio_api_key="some-key")
    ctx = build_context(
        settings, chain=AnswerChain(open_retriever(settings), llm=fake_llm(), settings=settings)
    )
    ctx.sync.sync_once()
    assert "not reachable" in ctx.sync.status().message  # what the operator sees in the Review tab
    with serve(ctx) as url:
        ask(page, url, "Can I start it without a browser tab?")
        page.get_by_text("so no tab opens", exact=False).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Like").last.click()
        status = page.locator("#feedback-status")
        status.get_by_text("your rating is saved", exact=False).wait_for(timeout=10_000)
        page.wait_for_timeout(5_500)  # the old page refreshed a sync status line every 5 s
        chat_tab = page.locator("#chatbot").locator("xpath=ancestor::*[@role='tabpanel'][1]")
        shown = chat_tab.inner_text() if chat_tab.count() else page.inner_text("body")
        assert "not reachable" not in shown and "Label Studio" not in status.inner_text()
