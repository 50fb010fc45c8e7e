"""Markdown → chunks that know their file, title, heading path and anchor.

LangChain's Markdown header splitters either strip every line (breaking code
indentation) or cut code fences and `---` rules into chunks of their own, so
the heading walk is done here (fence-aware, ~30 lines) and LangChain's
recursive splitter cuts sections that are still too long. Each chunk's text
starts with its breadcrumb ("Title > Heading > Subheading"), so both the
embedding and the lexical index see where the passage lives.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import yaml
from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
MIN_BODY_CHARS = 40  # sections with less text than this join the next one


@dataclass
class Section:
    headings: list[str]
    lines: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        return "\n".join(self.lines).strip()


def split_front_matter(text: str) -> tuple[dict[str, object], str]:
    """Return (front matter, rest). Unparseable front matter is dropped, not fatal."""
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


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


def sections(markdown: str) -> list[Section]:
    """Split by ATX headings outside code fences, keeping the heading path."""
    stack: list[tuple[int, str]] = []
    current = Section(headings=[])
    out = [current]
    fence: str | None = None
    for line in markdown.splitlines():
        fence_match = FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
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


def chunk_markdown(
    text: str,
    *,
    source: str,
    commit: str = "",
    web_base: str = "",
    chunk_size: int = 1200,
    chunk_overlap: int = 150,
) -> list[Document]:
    """Chunk one Markdown file. Metadata: source, title, section, anchor, url, commit, chunk."""
    front, body = split_front_matter(text)
    body = HTML_COMMENT.sub("", body)
    parts = _merge_small(sections(body))
    title = str(front.get("title") or "").strip()
    if not title:
        first = next((s.headings[0] for s in parts if s.headings), "")
        title = first or source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
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
        for piece in splitter.split_text(section.body):
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
                    },
                )
            )
    return docs
