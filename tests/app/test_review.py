"""The Review tab: known verdicts give known accuracy; reviewers rate inline; the chart renders."""

from __future__ import annotations

from gradio_client import Client
from test_browser import page  # noqa: F401 - the browser fixture

from ui.review import accuracy_frame, chart_frame


def test_known_verdicts_give_known_accuracy_and_inline_review_wins(running_app) -> None:
    log = running_app.ctx.log
    ids = [
        log.record_exchange(question=f"q{i}", answer=f"a{i}", prompt_version="answer-v1", model="m")
        for i in range(4)
    ]
    for exchange_id, thumb in zip(ids, ["good", "good", "bad", "bad"], strict=True):
        log.rate(exchange_id, thumb)
    client = Client(running_app.url, verbose=False)
    summary, _chart, _table, _exchanges = client.predict(
        ids[2], "good", "actually right", "all", "prompt_version", api_name="/review"
    )
    assert running_app.ctx.log.get(ids[2]).verdict == "good"  # the reviewer's verdict wins over the thumb
    assert running_app.ctx.log.get(ids[2]).user_rating == "bad"  # and the thumb is kept
    frame = accuracy_frame(running_app.ctx, "prompt_version")
    row = frame[frame["prompt_version"] == "answer-v1"].iloc[0]
    assert row["rated"] >= 4
    mine = [log.get(i).verdict for i in ids]
    assert mine == ["good", "good", "good", "bad"]
    assert "Accuracy" in summary and "reviewed" in summary
    assert not chart_frame(running_app.ctx).empty


def test_review_tab_shows_the_chart_in_a_browser(running_app, page) -> None:  # noqa: F811
    page.goto(running_app.url)
    page.get_by_role("tab", name="Review").click()
    page.get_by_text("Accuracy per day", exact=False).first.wait_for(timeout=30_000)
    page.locator("#accuracy-chart canvas, #accuracy-chart svg").first.wait_for(timeout=30_000)
    # one day of ratings draws no line: the caption says why, and where today's figures are
    page.get_by_text("A line needs two days of ratings", exact=False).wait_for(timeout=10_000)
