"""The lines of a cited passage shown under an answer: the ones that answer the question, readable."""

from __future__ import annotations

from langchain_core.documents import Document

from qa.quotes import quote, source_quote

TABLE = """Video > Parameters

## Parameters

The Video tag plays a video file. It is used with the TimelineLabels tag.

| Param | Type | Default | Description |
| --- | --- | --- | --- |
| name | `string` | | Name of the element |
| frameRate | `number` | `24` | Frame rate of the video; see [the FAQ](https://example.test/faq) |
| muted | `boolean` | `false` | Mute the video<br/>by default |
"""


def test_the_row_that_answers_is_quoted_as_cells_with_links_as_their_text() -> None:
    quoted = quote("what frame rate does the video tag assume by default?", TABLE, title="Video")
    assert "frameRate · `number` · `24` · Frame rate of the video; see the FAQ" in quoted
    assert (
        "https://" not in quoted and "|" not in quoted and "Parameters" not in quoted
    )  # no heading, no crumb


def test_lines_apart_are_joined_by_an_ellipsis_and_kept_in_passage_order() -> None:
    quoted = quote("can the video be muted, and what frame rate does it use?", TABLE, title="Video")
    assert quoted.startswith("The Video tag plays a video file. … frameRate · ")  # a line apart
    assert "see the FAQ; muted · `boolean`" in quoted  # neighbouring rows
    quoted = quote("what is name for, and can it be muted?", TABLE, title="Video")
    assert quoted.startswith("name · `string` · Name of the element … muted · ")
    assert "Mute the video by default" in quoted  # a cell's <br/> is a space


def test_a_passage_sharing_no_word_with_the_question_is_quoted_from_its_start() -> None:
    assert quote("how do I reset my password?", TABLE, title="Video").startswith("The Video tag plays")


def test_a_quote_stays_short_and_a_long_line_is_cut_at_a_word() -> None:
    long_line = "Storage " + " ".join(f"word{i}" for i in range(200)) + "."
    quoted = quote("which storage?", long_line, max_chars=120)
    assert len(quoted) <= 120 and quoted.endswith("…") and not quoted[:-1].endswith(" ")
    assert len(quote("what frame rate, muted, name, element, video, tag?", TABLE, max_chars=150)) <= 150


def test_a_retrieved_passage_skips_its_breadcrumb_lines_not_sentences_starting_with_the_title() -> None:
    doc = Document(
        page_content="Export > Units\n\nCoordinates are percentages of the image.\n\nExport > JSON\n\n"
        "Export coordinates as JSON.",
        metadata={"title": "Export"},
    )
    assert source_quote("what units are the coordinates in?", doc) == (
        "Coordinates are percentages of the image. Export coordinates as JSON."
    )
    assert source_quote("anything", Document(page_content="", metadata={})) == ""


def test_a_word_in_every_line_says_less_than_one_in_a_single_row() -> None:
    flags = (
        "| --port | Port of the Label Studio server |\n| --host | Host of the Label Studio server |\n"
        "| --no-browser | Open no browser with Label Studio |\n| --debug | Debug the Label Studio server |"
    )
    question = "how do I start the Label Studio server without a browser?"
    assert quote(question, flags, max_chars=60) == "--no-browser · Open no browser with Label Studio"
