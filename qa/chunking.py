"""Markdown → chunks that know their file, title, heading path and anchor.

LangChain's Markdown header splitters either strip every line (breaking code
indentation) or cut code fences and `---` rules into chunks of their own, so
the heading walk is done here (fence-aware, ~30 lines) and LangChain's
recursive splitter cuts sections that are still too long. Each chunk's text
starts with its breadcrumb ("Title > Heading > Subheading"), so both the
embedding and the lexical index see where the passage lives; a file without
a front-matter title is named by its leading heading or its path, and an
included fragment also by the page that includes it ("Video (tags/video)").

Chunks are 800 characters by default: MiniLM reads 256 tokens (~900
characters of these docs) and ignores the rest, so 1200-character chunks were
embedded without their tail. Markdown tables are cut into row groups.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

log = logging.getLogger(__name__)

OPENING_FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n")
FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
HTML_CODE = re.compile(r"<code>(.*?)</code>")  # parameter tables: <code>number</code> → `number`
MIN_BODY_CHARS = 40  # sections with less text than this join the next one (and such lead text its table)


@dataclass
class Section:
    headings: list[str]
    lines: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        return "\n".join(self.lines).strip()


def split_front_matter(text: str, *, source: str = "") -> tuple[dict[str, object], str]:
    """Return (front matter, rest). Broken front matter is never fatal, but it is reported.

    A docs author gets no other signal that a page lost its title or edition, so
    with `source` each problem is a warning naming the file (callers that only
    look up a title leave it out: one warning per file, from `chunk_markdown`).
    YAML that does not parse keeps the keys that parse on their own (a broken
    `title:` line costs the title, not the page's `tier`). A `---` block that is
    never closed is no front matter, which is how Jekyll and Hexo render it: the
    page is read as text.
    """
    match = FRONT_MATTER.match(text)
    if not match:
        if source and OPENING_FRONT_MATTER.match(text):
            log.warning(
                "%s: front matter opens with --- but is never closed: the page is read as text "
                "without front matter (add the closing --- line)",
                source,
            )
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        meta = _salvage_front_matter(match.group(1))
        if source:
            mark = getattr(exc, "problem_mark", None)
            where = f" near line {mark.line + 2}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            kept = f"kept the fields {', '.join(meta)}" if meta else "none of its fields could be read"
            log.warning(
                "%s: front matter is not valid YAML (%s%s): %s; the page is ingested (fix the front matter "
                "for its title and fields)",
                source,
                problem,
                where,
                kept,
            )
        return meta, text[match.end() :]
    if meta is not None and not isinstance(meta, dict) and source:
        log.warning("%s: front matter is not a list of `key: value` lines: ignored", source)
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def _salvage_front_matter(block: str) -> dict[str, object]:
    """The top-level keys of broken YAML that parse on their own (each with its indented lines)."""
    entries: list[list[str]] = []
    for line in block.splitlines():
        if line[:1].isspace() or line.startswith("-") or not entries:
            if entries:
                entries[-1].append(line)
            elif line.strip():
                entries.append([line])
        else:
            entries.append([line])
    meta: dict[str, object] = {}
    for entry in entries:
        try:
            value = yaml.safe_load("\n".join(entry))
        except yaml.YAMLError:
            continue
        if isinstance(value, dict):
            meta.update(value)
    return meta


def strip_nul(text: str, *, source: str = "") -> str:
    """`text` without NUL bytes: no Markdown page means one, yet valid UTF-8 may hold them.

    They come from a broken editor or a binary file named .md, and would otherwise be
    embedded, stored and shown in answers' sources; with `source`, a warning names the file.
    """
    if "\x00" not in text:
        return text
    if source:
        log.warning("%s: %d NUL byte(s) removed (fix the file)", source, text.count("\x00"))
    return text.replace("\x00", "")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces → '-'."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def clean_heading(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>|\{#[^}]*\}", "", text)
    return text.replace("`", "").replace("**", "").strip()


def next_fence(line: str, fence: str | None) -> str | None:
    """The open code fence after `line` (None outside code): one rule for every fence-aware walk."""
    match = FENCE.match(line)
    if not match:
        return fence
    marker = match.group(1)
    if fence is None:
        return marker[0] * len(marker)
    return None if marker.startswith(fence) else fence


def sections(markdown: str) -> list[Section]:
    """Split by ATX headings outside code fences, keeping the heading path."""
    stack: list[tuple[int, str]] = []
    current = Section(headings=[])
    out = [current]
    fence: str | None = None
    for line in markdown.splitlines():
        fence = next_fence(line, fence)
        heading = HEADING.match(line) if fence is None else None
        if heading:
            level, title = len(heading.group(1)), clean_heading(heading.group(2))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            current = Section(headings=[t for _, t in stack])
            out.append(current)
        else:
            current.lines.append(line)
    return out


def _merge_small(parts: list[Section]) -> list[Section]:
    """Fold near-empty sections (a heading and a line) into the section that follows."""
    merged: list[Section] = []
    carry: Section | None = None
    for section in parts:
        if carry is not None:
            heading_line = (
                "#" * max(1, len(section.headings)) + " " + (section.headings[-1] if section.headings else "")
            )
            section = Section(
                headings=carry.headings or section.headings,
                lines=[*carry.lines, heading_line, *section.lines],
            )
            carry = None
        if len(section.body) < MIN_BODY_CHARS:
            carry = section
        else:
            merged.append(section)
    if carry is not None and carry.body:
        merged.append(carry)
    return merged


INCLUDE = re.compile(r"\{%-?\s*(?:insertmd|include)\s+[\"']?([^\s\"'%]+\.md)[\"']?[^%]*-?%\}")


def page_title(text: str, source: str) -> str:
    """The title a reader sees for a file: its front-matter title, else `fallback_title`."""
    front, body = split_front_matter(strip_nul(text))
    return str(front.get("title") or "").strip() or fallback_title(body, source)


def included_files(text: str) -> list[str]:
    """Paths a page pulls in with a Hexo/Jekyll tag (`{% insertmd includes/tags/video.md %}`), as written."""
    return list(dict.fromkeys(INCLUDE.findall(HTML_COMMENT.sub("", text))))


def fallback_title(body: str, source: str) -> str:
    """A title for a file without front matter: its leading H1/H2, else its path.

    Included fragments such as `includes/tags/video.md` start with a generic
    "### Parameters"; naming them by path ("tags/video") keeps the tag's name
    in every chunk, so "Video tag frame rate" finds the parameter table.
    """
    first = next((line for line in body.splitlines() if line.strip()), "")
    heading = HEADING.match(first)
    if heading and len(heading.group(1)) <= 2:
        return clean_heading(heading.group(2))
    parts = source.rsplit(".", 1)[0].split("/")
    return "/".join(parts[-2:])


TABLE_ROW = re.compile(r"^[ \t]*\|")
TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}")


def _blocks(body: str) -> list[tuple[bool, str]]:
    """(is_table, text) runs of a section body; fenced code never counts as a table."""
    runs: list[tuple[bool, list[str]]] = []
    fence: str | None = None
    for line in body.splitlines():
        fence = next_fence(line, fence)
        is_table = fence is None and bool(TABLE_ROW.match(line))
        if runs and runs[-1][0] == is_table:
            runs[-1][1].append(line)
        else:
            runs.append((is_table, [line]))
    return [(t, "\n".join(lines).strip("\n")) for t, lines in runs if "\n".join(lines).strip()]


def _table_pieces(table: str, size: int) -> list[str]:
    """Rows grouped up to `size` characters, each group under the table's header row."""
    lines = table.splitlines()
    header: list[str] = []
    if len(lines) > 2 and TABLE_RULE.match(lines[1]):
        header, lines = lines[:2], lines[2:]
    pieces, current = [], []
    budget = size - sum(len(h) + 1 for h in header)
    for row in lines:
        if current and sum(len(r) + 1 for r in current) + len(row) > budget:
            pieces.append("\n".join([*header, *current]))
            current = []
        current.append(row)
    if current:
        pieces.append("\n".join([*header, *current]))
    return pieces


def _fit(piece: str, splitter: RecursiveCharacterTextSplitter) -> list[str]:
    """A row group as is, or cut by the splitter when one row alone is longer than a chunk."""
    return splitter.split_text(piece) if len(piece) > splitter._chunk_size else [piece]


def _split_body(body: str, splitter: RecursiveCharacterTextSplitter, table_size: int) -> list[str]:
    """Cut by size; with `table_size`, Markdown tables are cut apart into small row groups.

    A parameter table holds one answer per row ("maxUsages: maximum number of
    times a label can be used"); embedded whole, the rows blur together.
    """
    if not table_size or "|" not in body:
        return splitter.split_text(body)
    pieces: list[str] = []
    text_run: list[str] = []
    for is_table, block in _blocks(body):
        if is_table and len(block) > table_size:
            rows = [p for r in _table_pieces(block, table_size) for p in _fit(r, splitter)]
            lead = "\n\n".join(text_run)
            if len(lead) < MIN_BODY_CHARS:  # a heading line or a few words: keep it with the first rows
                rows[0] = f"{lead}\n\n{rows[0]}" if lead else rows[0]
            else:
                pieces.extend(splitter.split_text(lead))
            text_run = []
            pieces.extend(rows)
        else:
            text_run.append(block)
    if text_run:
        pieces.extend(splitter.split_text("\n\n".join(text_run)))
    return pieces


MIN_ROW_CHARS = 25  # letters and digits: shorter rows ("| `x` | int |") say too little to be matched alone
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
CHANGELOG_PATH = re.compile(r"(?i)(?:^|/)(?:release[_-]?notes?|changelog|changes)(?:/|\.md$)")
ROW_KIND = "row"  # metadata `kind` of a row document: a table row or a release-note item (chunks have none)


def split_breadcrumb(text: str) -> tuple[str, str]:
    """A stored chunk's ("Title > Heading" breadcrumb, body); ("", text) for text without one."""
    crumb, sep, body = text.partition("\n\n")
    return (crumb, body) if sep else ("", text)


def is_row(doc: Document) -> bool:
    """Whether a stored document is a row of `row_documents` (a table row or a changelog item), not a chunk."""
    return doc.metadata.get("kind") == ROW_KIND


def table_rows(chunks: list[Document]) -> list[Document]:
    """One small document per Markdown table row of `chunks`, pointing at its chunk (`row_of`).

    A tag's parameter row ("canRotate | boolean | Show or hide rotation control")
    is what a question about one attribute matches, but even a 300-character row
    group blurs it with its neighbours. Embedded alone, under its breadcrumb, the
    row finds its chunk; the retriever never shows rows, only the chunk they point
    at (stored in the same collection, so an ingest syncs them with their file).
    Header rows and rules are left out: they repeat in every row group.
    """
    return _rows(chunks, _table_lines)


def _table_lines(body: str) -> list[str]:
    """The body rows of every Markdown table in `body`, without header rows and rules."""
    found = []
    for is_table, block in _blocks(body):
        if not is_table:
            continue
        lines = block.splitlines()
        if len(lines) > 1 and TABLE_RULE.match(lines[1]):
            lines = lines[2:]
        found.extend(line for line in lines if not TABLE_RULE.match(line))
    return found


def is_changelog(source: str) -> bool:
    """Whether a file is release notes: `release_notes/…`, `CHANGELOG.md`, `changes.md`."""
    return bool(CHANGELOG_PATH.search(source))


def item_rows(chunks: list[Document]) -> list[Document]:
    """One small document per list item or paragraph of `chunks`, like `table_rows`' rows.

    For release notes: one 800-character chunk lists five unrelated changes
    ("Redis usernames are supported in wait-for-redis", "a Reset Cache action"),
    and its vector is about none of them; a question about one change matches
    its own item. Headings, HTML, tables and code are left out.
    """
    return _rows(chunks, _items)


def _items(body: str) -> list[str]:
    """The list items and paragraphs of `body`, each joined across its lines ("" where one ends)."""
    items: list[str] = []
    fence: str | None = None
    for line in body.splitlines():
        in_code, fence = fence is not None, next_fence(line, fence)
        stripped = line.strip()
        if in_code or fence is not None or not stripped or stripped.startswith(("#", "<", "|")):
            items.append("")  # code, a blank line, a heading, HTML or a table ends an item
            continue
        item = LIST_ITEM.match(line)
        if item and not line.startswith("    "):
            items.append(item.group(1))
        elif items and items[-1]:
            items[-1] += " " + stripped  # the item's or paragraph's next line
        else:
            items.append(stripped)
    return items


def row_documents(chunks: list[Document]) -> list[Document]:
    """The row documents ingest stores for one file's chunks: table rows, and a changelog's items."""
    if chunks and is_changelog(str(chunks[0].metadata.get("source", ""))):
        return table_rows(chunks) + item_rows(chunks)
    return table_rows(chunks)


def _rows(chunks: list[Document], texts: Callable[[str], list[str]]) -> list[Document]:
    """A row document for each text that `texts` finds in a chunk's body, long enough to match alone."""
    rows = []
    for doc in chunks:
        crumb, body = split_breadcrumb(doc.page_content)
        rows.extend(row for text in texts(body) if (row := _row(doc, crumb, text)) is not None)
    return rows


def _row(chunk: Document, crumb: str, text: str) -> Document | None:
    """A row document for `text` of `chunk`, or None if it is too short to be matched alone."""
    if len(re.sub(r"[\W_]", "", text)) < MIN_ROW_CHARS:
        return None
    meta = {k: v for k, v in chunk.metadata.items() if k != "chunk"}
    return Document(
        page_content=f"{crumb}\n\n{text.strip()}",
        metadata=meta | {"kind": ROW_KIND, "row_of": chunk.metadata.get("chunk")},
    )


# What the embedding model reads of a chunk: Markdown and HTML markup cost MiniLM tokens
# (a table's `|---|---|` rule alone is dozens) and carry no meaning. About 37 % of a chunk's
# tokens on the Label Studio docs; the stored text and the lexical index keep everything.
_ATTRS = re.compile(r"[\"'=/]+")  # <View visibleWhen="choice-selected"> → View visibleWhen choice-selected
_PLAIN_RULES = [
    (re.compile(r"^[ \t]*\|?[ \t:|-]*-{3,}[ \t:|-]*$", re.MULTILINE), ""),  # table rules, --- lines
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images → their text
    (re.compile(r"https?://[^\s)>\]]+"), " "),  # bare URLs
    # HTML layout attributes say nothing; a labeling config's attributes (visibleWhen) do
    (re.compile(r"\s(?:src|href|class|style|width|height|target|id|rel)=(?:\"[^\"]*\"|'[^']*'|[^\s>]+)"), ""),
    (re.compile(r"</?([A-Za-z][\w-]*)((?:\s[^<>]*)?)/?>"), lambda m: f" {m[1]} {_ATTRS.sub(' ', m[2])} "),
    (re.compile(r"[*`#>~=|]+|-{2,}"), " "),  # emphasis, code ticks, quotes, pipes, rules
    (re.compile(r"[ \t]+"), " "),
    (re.compile(r"\n\s*\n+"), "\n"),
]


def plain_text(chunk: str) -> str:
    """A chunk's words without its markup: what is embedded (never what is stored or shown)."""
    for pattern, replacement in _PLAIN_RULES:
        chunk = pattern.sub(replacement, chunk)
    return chunk.strip()


def chunk_markdown(
    text: str,
    *,
    source: str,
    commit: str = "",
    web_base: str = "",
    chunk_size: int = 800,
    chunk_overlap: int = 100,
    table_chunk_size: int = 300,
    included_by: str = "",
) -> list[Document]:
    """Chunk one Markdown file. Metadata: source, title, section, anchor, url, commit, chunk, tier.

    `included_by` is the title of the page that includes this file (a fragment
    without a title of its own, such as a tag's parameter table): its chunks
    are titled "Video (tags/video)", after the page where a reader meets them,
    not by their path alone.

    `tier` is the edition the page is written for ("opensource", "enterprise" or
    "all", from its front matter), only on pages that say: Label Studio has a
    community page and an Enterprise page for the same thing ("Project settings").

    `table_chunk_size` (0 = off) cuts Markdown tables into row groups of about
    that size, each under the table's header: a tag's parameter table answers
    one question per row, and a 40-row table embedded whole answers none well.
    """
    front, body = split_front_matter(strip_nul(text, source=source), source=source)
    body = HTML_CODE.sub(r"`\1`", HTML_COMMENT.sub("", body))
    parts = _merge_small(sections(body))
    title = str(front.get("title") or "").strip()
    if not title and included_by:
        title = f"{included_by} ({fallback_title(body, source)})"
    title = title or fallback_title(body, source)
    tier = {"tier": str(front["tier"]).strip().lower()} if front.get("tier") else {}
    splitter = RecursiveCharacterTextSplitter.from_language(
        Language.MARKDOWN, chunk_size=chunk_size, chunk_overlap=chunk_overlap
    )
    docs: list[Document] = []
    for section in parts:
        if not section.body:
            continue
        path = [h for h in section.headings if h]
        if path and path[0].strip().lower() == title.lower():
            path = path[1:]
        breadcrumb = " > ".join([title, *path])
        anchor = github_anchor(section.headings[-1]) if section.headings else ""
        url = ""
        if web_base and commit:
            url = f"{web_base}/blob/{commit}/{source}" + (f"#{anchor}" if anchor else "")
        for piece in _split_body(section.body, splitter, table_chunk_size):
            docs.append(
                Document(
                    page_content=f"{breadcrumb}\n\n{piece}",
                    metadata={
                        "source": source,
                        "title": title,
                        "section": " > ".join(path) or title,
                        "anchor": anchor,
                        "url": url,
                        "commit": commit,
                        "chunk": len(docs),
                    }
                    | tier,
                )
            )
    return docs
