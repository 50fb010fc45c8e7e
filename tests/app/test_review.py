"""The Review tab: known verdicts give known accuracy; reviewers rate inline; the chart renders."""

from __future__ import annotations

import itertools
import logging
import time

from appkit import FakeChat, fake_llm, free_port, serve
from gradio_client import Client
from langchain_core.messages import AIMessage
from playwright.sync_api import expect
from test_browser import page  # noqa: F401 - the browser fixture

from ui.review import (
    EXCHANGE_COLUMNS,
    FLAGGED,
    accuracy_frame,
    chart_frame,
    exchange_markdown,
    summary_markdown,
)


def table_rows(frame) -> list:  # noqa: ANN001 - a Dataframe's value as gradio_client returns it
    return frame["data"] if isinstance(frame, dict) else frame.values.tolist()


def test_known_verdicts_give_known_accuracy_and_inline_review_wins(running_app) -> None:
    log = running_app.ctx.log
    ids = [
        log.record_exchange(question=f"q{i}", answer=f"a{i}", prompt_version="answer-v1", model="m")
        for i in range(4)
    ]
    for exchange_id, thumb in zip(ids, ["good", "good", "bad", "bad"], strict=True):
        log.rate(exchange_id, thumb)
    client = Client(running_app.url, verbose=False)
    summary, _line, _dots, _table, _exchanges = client.predict(
        ids[2],
        "good",
        "actually right",
        ["incomplete"],  # kept only with a bad verdict
        "all",
        "prompt_version",
        "  Ana  Reviewer ",
        "100",
        api_name="/review",
    )
    assert running_app.ctx.log.get(ids[2]).verdict == "good"  # the reviewer's verdict wins over the thumb
    assert running_app.ctx.log.get(ids[2]).user_rating == "bad"  # and the thumb is kept
    assert running_app.ctx.log.get(ids[2]).reviewer == "Ana Reviewer"
    assert running_app.ctx.log.get(ids[2]).reviewer_problems == ()
    frame = accuracy_frame(running_app.ctx, "prompt_version")
    row = frame[frame["prompt_version"] == "answer-v1"].iloc[0]
    assert row["rated"] >= 4
    mine = [log.get(i).verdict for i in ids]
    assert mine == ["good", "good", "good", "bad"]
    assert "Accuracy" in summary and "reviewed" in summary
    assert not chart_frame(running_app.ctx).empty


def test_review_tab_shows_the_chart_in_a_browser(running_app, page) -> None:  # noqa: F811
    log = running_app.ctx.log
    log.rate(log.record_exchange(question="rated today", answer="a"), "good")
    page.goto(running_app.url)
    page.get_by_role("tab", name="Review").click()
    page.get_by_text("Accuracy per day", exact=False).first.wait_for(timeout=30_000)
    # One day of ratings: a line of one point would draw nothing, so the day's figures are dots.
    page.locator("#accuracy-dots canvas, #accuracy-dots svg").first.wait_for(timeout=30_000)
    page.get_by_text("One day of ratings so far: a line needs two", exact=False).wait_for(timeout=10_000)
    expect(page.locator("#accuracy-chart")).to_be_hidden()

    log.rate(log.record_exchange(question="an older one", answer="a", time="2026-01-05T10:00:00Z"), "good")
    page.get_by_role("button", name="Refresh", exact=True).click()

    page.locator("#accuracy-chart canvas, #accuracy-chart svg").first.wait_for(timeout=30_000)
    expect(page.locator("#accuracy-dots")).to_be_hidden()
    assert set(chart_frame(running_app.ctx)["day"]) >= {"2026-01-05"}


def test_a_clicked_row_brings_its_own_verdict_into_the_form_not_the_last_rows(running_app, page) -> None:  # noqa: F811
    log = running_app.ctx.log
    long_answer = "8080 [1]. " + "It can be changed. " * 20 + "That is the whole answer."  # the table cuts it
    reviewed = log.record_exchange(
        question="Which port does the reviewed one use?",
        answer=long_answer,
        cited=[
            {
                "n": 1,
                "source": "guide/start.md",
                "section": "Start > Ports",
                "url": "",
                "quote": "Port 8080 is the default.",
            }
        ],
    )
    log.review(reviewed, "bad", "It is 8080 only by default", reviewer="ana", problems=["incomplete"])
    fresh = log.record_exchange(question="Which port does the fresh one use?", answer="8081 [1].")
    page.goto(running_app.url)
    page.get_by_role("tab", name="Review").click()  # opening the tab shows the answers logged meanwhile
    table = page.locator("#exchanges-table")
    form_id = page.locator("#review-id textarea, #review-id input").first
    comment = page.locator("#review-comment textarea").first

    def click_row(question: str) -> None:
        table.get_by_text(question, exact=True).locator("visible=true").first.click(timeout=30_000)

    click_row("Which port does the reviewed one use?")
    page.wait_for_function(
        f"() => document.querySelector('#review-id textarea, #review-id input').value === '{reviewed}'"
    )
    assert comment.input_value() == "It is 8080 only by default"
    assert page.locator("#review-verdict").get_by_label("bad").is_checked()
    problems = page.locator("#review-problems")
    assert problems.get_by_label("Incomplete").is_checked()  # what the reviewer found wrong, too
    assert table.get_by_text("bad: incomplete", exact=True).locator("visible=true").count() == 1  # its cell
    assert not problems.get_by_label("Unclear or badly written").is_checked()
    # ... and the answer whole beside the form, with its sources' quoted lines open
    detail = page.locator("#review-detail")
    detail.get_by_text("That is the whole answer.", exact=False).wait_for(timeout=10_000)
    assert detail.get_by_text("Port 8080 is the default.", exact=False).is_visible()
    assert "guide/start.md › Start > Ports" in detail.inner_text()

    click_row("Which port does the fresh one use?")
    page.wait_for_function(
        f"() => document.querySelector('#review-id textarea, #review-id input').value === '{fresh}'"
    )
    assert form_id.input_value() == fresh
    assert comment.input_value() == ""  # not the other answer's comment, saved onto this one by mistake
    assert not page.locator("#review-verdict").get_by_label("bad").is_checked()
    problems.wait_for(state="hidden", timeout=10_000)  # no bad verdict: nothing to say was wrong
    detail.get_by_text("Which port does the fresh one use?", exact=False).wait_for(timeout=10_000)
    assert "whole answer" not in detail.inner_text()

    # The search box finds an answer among the last hundred.
    page.locator("#exchanges-table input[placeholder^='Search']").fill("fresh one")
    page.wait_for_timeout(500)
    assert (
        table.get_by_text("Which port does the reviewed one use?", exact=True).locator("visible=true").count()
        == 0
    )
    assert (
        table.get_by_text("Which port does the fresh one use?", exact=True).locator("visible=true").count()
        == 1
    )

    # Saved under the reviewer's name, which the browser remembers for next time.
    click_row("Which port does the fresh one use?")
    page.locator("#review-verdict").get_by_label("good").check()
    page.locator("#reviewer-name textarea, #reviewer-name input").first.fill("Bo")
    page.get_by_role("button", name="Save verdict").click()
    page.get_by_text("Verdict saved", exact=False).first.wait_for(timeout=10_000)
    assert running_app.ctx.log.get(fresh).reviewer == "Bo"
    page.reload()
    page.get_by_role("tab", name="Review").click()
    page.wait_for_function(
        "() => document.querySelector('#reviewer-name textarea, #reviewer-name input').value === 'Bo'"
    )


def test_the_table_lists_the_latest_hundred_or_as_many_as_asked(running_app) -> None:
    log = running_app.ctx.log
    for i in range(120):
        log.record_exchange(question=f"bulk question {i}", answer="a")
    client = Client(running_app.url, verbose=False)
    total = log.counts()["exchanges"]
    for shown, rows in (("100", 100), ("all", total)):
        _summary, _line, _dots, _table, exchanges = client.predict(
            "unrated", "prompt_version", shown, api_name="/review_data"
        )
        listed = table_rows(exchanges)
        assert len(listed) == min(rows, len(log.recent(0, verdict="unrated")))
        assert listed[0][1] == "bulk question 119"  # newest first
        assert listed[0][EXCHANGE_COLUMNS.index("sync")] == "not sent (unrated)"  # not a bare "local"


def test_the_answer_shown_whole_to_a_reviewer_is_text_not_html(running_app) -> None:
    log = running_app.ctx.log
    shown = exchange_markdown(
        log.get(
            log.record_exchange(
                question="<img src=x onerror=alert(1)> ![x](http://evil.test/x.png)",
                answer="Use <View> [1].",
                cited=[{"n": 1, "source": "a.md", "section": "A", "url": "", "quote": "<script>x</script>"}],
            )
        )
    )
    assert "<img" not in shown and "<script>" not in shown and "<View>" not in shown
    assert "&lt;View&gt;" in shown and "&lt;script&gt;x&lt;/script&gt;" in shown
    assert "**The user said:** no thumb" in shown and "<details open>" in shown
    assert "Given with" not in shown
    again = log.get(log.record_exchange(question="q", answer="a", reused_from="ex-9", reused_verdict="bad"))
    assert (
        "**Given with** a reviewer's rejection of an earlier answer to the same question (exchange `ex-9`)."
        in (exchange_markdown(again))
    )


def test_with_a_reviewer_password_the_review_tab_opens_only_with_it(app_data, page, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("DATA_DIR", str(app_data))
    from app import build_context
    from settings import get_settings

    ctx = build_context(get_settings(port=free_port(), reviewer_password="s3cret"), llm=fake_llm())
    ctx.log.record_exchange(question="Which answer is behind the gate?", answer="This one [1].")
    with serve(ctx) as url:
        page.goto(url)
        page.get_by_role("tab", name="Review").click()
        box = page.locator("#reviewer-password input, #reviewer-password textarea").first
        box.wait_for(timeout=30_000)
        assert page.get_by_text("Which answer is behind the gate?").count() == 0  # nothing sent yet
        box.fill("wrong")
        page.get_by_role("button", name="Open the review page").click()
        page.get_by_text("Wrong reviewer password.", exact=False).first.wait_for(timeout=10_000)
        assert page.locator("#exchanges-table").is_hidden()

        box.fill("s3cret")
        page.get_by_role("button", name="Open the review page").click()
        table = page.locator("#exchanges-table")
        table.get_by_text("Which answer is behind the gate?", exact=True).locator(
            "visible=true"
        ).first.wait_for(timeout=30_000)
        # ... and no program gets the verdicts or the answers around the gate
        endpoints = Client(url, verbose=False).view_api(print_info=False, return_format="dict")[
            "named_endpoints"
        ]
        assert "/review" not in endpoints and "/review_data" not in endpoints


def judge_saying(reply: str) -> FakeChat:
    return FakeChat(messages=itertools.cycle([AIMessage(reply)]))


def wait_for_pre_rating(log, exchange_id: str, timeout: float = 20.0):  # noqa: ANN001, ANN201
    deadline = time.time() + timeout
    while time.time() < deadline:
        exchange = log.get(exchange_id)
        if exchange.pre_rating:
            return exchange
        time.sleep(0.1)
    raise AssertionError(f"answer {exchange_id} was not pre-rated within {timeout} s")


def test_answers_are_pre_rated_for_reviewers_who_see_the_flagged_ones_first(app_data, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(app_data))
    for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    from app import build_context
    from settings import get_settings

    judge = judge_saying(
        "Verdict: Bad\nReason: The excerpts say `--no-browser`, the answer adds nothing wrong?"
    )
    ctx = build_context(get_settings(port=free_port(), pre_rate="on"), llm=fake_llm(), judge_llm=judge)
    log = ctx.log
    with serve(ctx) as url:
        client = Client(url, verbose=False)
        client.predict("how do I start without opening a browser tab?", [], api_name="/ask")
        flagged = wait_for_pre_rating(log, log.recent(1)[0].id)
        assert (flagged.pre_rating, flagged.pre_rating_model) == ("bad", "generic-fake-chat-model")
        assert flagged.pre_rating_prompt == "judge-v1"  # agreement can be compared across judge prompts
        assert flagged.pre_rating_reason.startswith("The excerpts say `--no-browser`")
        assert flagged.verdict is None  # a hint, never a verdict: accuracy does not count it
        client.predict("zebra quantum flux capacitor pricing?", [], api_name="/ask")
        silent = log.recent(1)[0]
        assert silent.prompt_version.startswith("abstain")  # no model wrote it: nothing to pre-rate

        # The reviewer's filter lists the flagged answer (not the silent one), with its pre-rating.
        _summary, _line, _dots, _table, exchanges = client.predict(
            FLAGGED, "pre_rating", "all", api_name="/review_data"
        )
        listed = table_rows(exchanges)
        ids = [row[EXCHANGE_COLUMNS.index("id")] for row in listed]
        assert flagged.id in ids and silent.id not in ids
        assert {row[EXCHANGE_COLUMNS.index("pre-rating")] for row in listed} == {"bad"}
        assert "**Pre-rated Bad** by generic\\-fake\\-chat\\-model: The excerpts say" in exchange_markdown(
            flagged
        )

        # A reviewer agrees: the flag leaves the filter, and the agreement is measured.
        summary, _line, _dots, table, exchanges = client.predict(
            flagged.id, "bad", "", ["unsupported"], FLAGGED, "pre_rating", "ana", "all", api_name="/review"
        )
        listed = table_rows(exchanges)
        assert flagged.id not in [row[EXCHANGE_COLUMNS.index("id")] for row in listed]
        assert "Pre-ratings agree with reviewers on" in summary
        assert log.get(flagged.id).reviewer_problems == ("unsupported",)
        assert "rejected answers: " in summary and "says what the sources don't 1" in summary
        agreement = log.pre_rating_agreement()
        assert agreement.compared >= 1 and agreement.flagged_right >= 1
        groups = table_rows(table)
        assert "pre-rated bad" in [row[0] for row in groups]
    assert log.get(silent.id).pre_rating is None


def test_a_judge_that_fails_or_gives_no_verdict_leaves_the_answer_unrated(
    app_data, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("DATA_DIR", str(app_data))
    from app import build_context
    from settings import get_settings

    for reply, expected in (
        ("The documentation doesn't seem to cover this.", "gave no verdict"),
        (None, "failed"),
    ):
        judge = judge_saying(reply) if reply else FakeChat(messages=iter([]))  # nothing left: it raises
        ctx = build_context(get_settings(pre_rate="on"), llm=fake_llm(), judge_llm=judge)
        answer = ctx.chain.answer("how do I start without opening a browser tab?")
        exchange_id = ctx.log.record_exchange(question=answer.question, answer=answer.text)
        with caplog.at_level(logging.WARNING):
            assert ctx.pre_rate(exchange_id, answer).result(timeout=20) is None
        assert expected in caplog.text
        assert ctx.log.get(exchange_id).pre_rating is None
        ctx.close()
    off = build_context(get_settings(pre_rate="off"), llm=fake_llm(), judge_llm=judge_saying("Verdict: Good"))
    assert off.judge is None and off.pre_rate("x", answer) is None


def test_a_reviewer_filters_the_flagged_answers_and_reads_why_in_a_browser(running_app, page) -> None:  # noqa: F811
    log = running_app.ctx.log
    flagged = log.record_exchange(question="Which flag changes the flagged port?", answer="Use --port [1].")
    log.set_pre_rating(flagged, "bad", "The excerpts name -p, not --port.", model="judge-model")
    trusted = log.record_exchange(question="Which flag changes the trusted port?", answer="Use -p [1].")
    log.set_pre_rating(trusted, "good", "[1] names -p.", model="judge-model")
    page.goto(running_app.url)
    page.get_by_role("tab", name="Review").click()
    table = page.locator("#exchanges-table")
    table.get_by_text("Which flag changes the trusted port?", exact=True).locator(
        "visible=true"
    ).first.wait_for(timeout=30_000)

    page.locator("#verdict-filter").get_by_label(FLAGGED).check()
    # the table is redrawn with the flagged answers only: the trusted one leaves it, the flagged stays
    trusted_row = table.get_by_text("Which flag changes the trusted port?", exact=True).locator(
        "visible=true"
    )
    expect(trusted_row).to_have_count(0, timeout=30_000)
    row = table.get_by_text("Which flag changes the flagged port?", exact=True).locator("visible=true").first
    row.click(timeout=30_000)
    detail = page.locator("#review-detail")
    detail.get_by_text("The excerpts name -p, not --port.", exact=False).wait_for(timeout=10_000)
    assert "Pre-rated Bad by judge-model" in detail.inner_text()
    assert "a model's hint, not a verdict" in detail.inner_text()
    assert "pre-rated Bad wait for a reviewer" in page.locator("#review-summary").inner_text()


def test_the_answer_read_whole_says_what_its_user_ticked_as_wrong(running_app) -> None:
    log = running_app.ctx.log
    exchange_id = log.record_exchange(question="which port by default?", answer="9000 [1].")
    log.rate(exchange_id, "bad")
    log.set_comment(exchange_id, "It is 8080", ["Wrong or made up"])
    shown = exchange_markdown(log.get(exchange_id)).replace("\\", "")
    assert "**The user said:** Bad 👎: wrong or made up, comment: It is 8080" in shown


def test_a_follow_up_read_whole_says_what_was_searched(running_app) -> None:
    log = running_app.ctx.log
    follow_up = log.record_exchange(
        question="and for GCS?",
        standalone_question="How do I connect a bucket as a storage? and for GCS?",
        answer="…",
    )
    alone = log.record_exchange(question="which port?", standalone_question="which port?", answer="8080")
    shown = exchange_markdown(log.get(follow_up)).replace("\\", "")
    assert "**Searched as** (a follow-up): How do I connect a bucket as a storage? and for GCS?" in shown
    assert "Searched as" not in exchange_markdown(log.get(alone))


def test_the_answer_read_whole_numbers_its_sources_as_the_chat_did(running_app) -> None:
    log = running_app.ctx.log
    cited = [
        {"n": 2, "source": "docs/source/guide/start.md", "section": "Start > Port", "quote": "port 8080"},
        {"n": 5, "source": "docs/source/guide/env.md", "section": "Env > Port", "quote": "LABEL_STUDIO_PORT"},
    ]
    exchange_id = log.record_exchange(question="which port?", answer="8080 [2], or set it [5].", cited=cited)
    shown = exchange_markdown(log.get(exchange_id)).replace("\\", "")
    assert "8080 [1], or set it [2]." in shown
    assert shown.index("start.md") < shown.index("env.md")
    assert "[5]" not in shown


def test_the_summary_says_why_no_answer_is_pre_rated_with_the_local_model(running_app) -> None:
    summary = summary_markdown(running_app.ctx)  # PRE_RATE=auto, and the bundled local model answers
    # ("off now", after the answers earlier tests had pre-rated by a stand-in judge)
    assert (
        "Pre-rating is off" in summary
        and "(PRE_RATE=auto does not pre-rate with the bundled local model" in summary
    )
    assert "No answer is pre-rated yet" not in summary
