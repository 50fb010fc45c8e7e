"""How Markdown becomes chunks: what the retriever can find depends on it."""

from __future__ import annotations

import pytest

from qa.chunking import chunk_markdown, is_changelog, plain_text, row_documents, table_rows

TABLE = "| Param | Type | Description |\n| --- | --- | --- |\n" + "".join(
    f"| [param{i}] | <code>string</code> | what parameter number {i} of this tag is for |\n"
    for i in range(20)
)


def test_a_long_table_is_cut_into_row_groups_under_its_header() -> None:
    docs = chunk_markdown("### Parameters\n\n" + TABLE, source="docs/includes/tags/image.md")
    assert len(docs) > 3
    for doc in docs:
        body = doc.page_content.split("\n\n", 1)[1]
        assert "| Param | Type | Description |" in body  # every group keeps the header
        assert len(body) <= 400
    rows = "".join(d.page_content for d in docs)
    assert all(f"[param{i}]" in rows for i in range(20))
    assert docs[0].page_content.startswith("tags/image > Parameters")
    assert "`string`" in rows and "<code>" not in rows


def test_tables_inside_code_fences_and_short_tables_stay_whole() -> None:
    fenced = "## Example\n\n```\n" + TABLE + "```\n"
    assert len(chunk_markdown(fenced, source="a.md", chunk_size=4000)) == 1
    small = "## Small\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n"
    assert len(chunk_markdown(small, source="b.md")) == 1


def test_every_table_row_gets_a_document_pointing_at_its_chunk() -> None:
    docs = chunk_markdown("### Parameters\n\n" + TABLE, source="docs/includes/tags/image.md")
    rows = table_rows(docs)
    assert len(rows) == 20  # one per body row: no header, no rule
    for i, row in enumerate(rows):
        crumb, line = row.page_content.split("\n\n")
        assert crumb == "tags/image > Parameters" and line.startswith(f"| [param{i}] |")
        chunk = next(d for d in docs if d.metadata["chunk"] == row.metadata["row_of"])
        assert line in chunk.page_content
        assert row.metadata["kind"] == "row" and "chunk" not in row.metadata
    fenced = chunk_markdown("## Example\n\n```\n" + TABLE + "```\n", source="a.md", chunk_size=4000)
    assert table_rows(fenced) == []  # a table shown as code is an example, not a reference
    short = chunk_markdown("## Small\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n", source="b.md")
    assert table_rows(short) == []  # too few words to match anything alone


def test_each_change_in_a_release_note_gets_a_document_pointing_at_its_chunk() -> None:
    note = (
        "## Label Studio Enterprise 2.26.1\n\n### Bug fixes\n\n"
        "- Fixed an issue where Redis usernames were not supported in the\n  wait-for-redis deploy script.\n"
        "- Fixed an issue where task data appeared in notification emails.\n- Fixed a typo.\n\n"
        "A paragraph about the new Reset Cache action in the Danger Zone.\n\n"
        "```bash\n- not an item: helm upgrade --install with all of its flags\n```\n"
    )
    docs = chunk_markdown(note, source="docs/release_notes/onprem/2.26.1.md")
    rows = row_documents(docs)
    assert [r.page_content.split("\n\n", 1)[1] for r in rows] == [
        "Fixed an issue where Redis usernames were not supported in the wait-for-redis deploy script.",
        "Fixed an issue where task data appeared in notification emails.",
        "A paragraph about the new Reset Cache action in the Danger Zone.",
    ]  # an item's next line joins it; too short ("a typo") and code are left out
    assert all(r.metadata["kind"] == "row" and r.metadata["row_of"] == 0 for r in rows)
    assert row_documents(chunk_markdown(note, source="docs/guide/install.md")) == []  # no changelog
    assert is_changelog("CHANGELOG.md") and is_changelog("docs/release-notes/1.2.md")
    assert not is_changelog("docs/guide/release_process.md")


def test_a_page_says_which_edition_it_is_for() -> None:
    (doc,) = chunk_markdown(
        "---\ntitle: Project settings\ntier: Enterprise \n---\n\n## Sampling\n\nOrder.", source="a.md"
    )
    assert doc.metadata["tier"] == "enterprise"
    (doc,) = chunk_markdown("---\ntitle: Projects\n---\n\n## Sampling\n\nOrder of tasks.", source="b.md")
    assert "tier" not in doc.metadata  # pages that don't say keep the metadata (and record keys) they had


def test_a_file_without_front_matter_is_titled_by_its_leading_heading_or_path() -> None:
    (doc,) = chunk_markdown("# Data import\n\nThe import app parses uploaded files.", source="x/README.md")
    assert doc.metadata["title"] == "Data import"
    (doc,) = chunk_markdown(
        "### Regions\n\nRegions are the labeled parts.", source="docs/includes/regions.md"
    )
    assert doc.metadata["title"] == "includes/regions"


def test_the_embedded_text_keeps_the_words_and_drops_the_markup() -> None:
    chunk = (
        "Tags > View\n\n| Param | Type |\n| --- | :---: |\n| **visibleWhen** | `string` |\n\n"
        'See [the View tag](https://labelstud.io/tags/view.html) and <img src="/images/v.png" alt="View"/>\n'
        '```xml\n<View visibleWhen="choice-selected" whenTagName="sentiment">\n```'
    )
    plain = plain_text(chunk)
    for word in (
        "Tags",
        "View",
        "Param",
        "visibleWhen",
        "string",
        "the View tag",
        "choice-selected",
        "sentiment",
    ):
        assert word in plain
    for markup in ("---", "|", "**", "`", "https://", "/images/", "<", "src"):
        assert markup not in plain
    assert plain_text("no markup at all") == "no markup at all"


def test_broken_front_matter_keeps_what_parses_and_says_which_file(caplog: pytest.LogCaptureFixture) -> None:
    text = "---\ntitle: [unclosed\ntier: enterprise\ntags:\n  - sso\n---\n\n## SSO\n\nSet up single sign-on here."
    (doc,) = chunk_markdown(text, source="guide/sso.md")
    assert (doc.metadata["title"], doc.metadata["tier"]) == ("SSO", "enterprise")
    assert (
        "guide/sso.md: front matter is not valid YAML" in caplog.text
        and "kept the fields tier, tags" in caplog.text
    )
    caplog.clear()
    (doc,) = chunk_markdown("---\ntitle: Never closed\n\nBody\x00 text of a page.", source="open.md")
    assert "open.md: front matter opens with --- but is never closed" in caplog.text
    assert "open.md: 1 NUL byte(s) removed" in caplog.text and "\x00" not in doc.page_content
