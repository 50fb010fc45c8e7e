"""Safe Markdown for the chat: text from users, docs and models shows as text, never as HTML.

Gradio renders chat messages as Markdown with HTML allowed. Label Studio's docs
(and so the answers) are full of XML-like tags (`<View>`, `<Choices>`), and a
question or a model could contain `<script>` or `<img onerror=…>`. Outside code
spans and fences, `&`, `<` and `>` are escaped; inside them Markdown already
shows text literally. What a user typed is shown with no Markdown at all
(`literal_markdown`), and no message makes the browser load an image.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from markdown_it import MarkdownIt

from qa.precedents import Precedent
from qa.types import Source

_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_markdown(text: str) -> str:
    """Escape HTML outside code so it displays as typed, and close a code fence left open.

    Every piece of a message stays self-contained: what is appended after it
    (an answer's sources) never ends up inside its code block. The fence is closed
    on the escaped text, since that is what the browser parses. Images are turned
    into plain links: a message's text (an answer talked into it by a question,
    a doc page) must never make the browser fetch from a host of its choosing.
    """
    parts = _CODE.split(text or "")
    escaped = "".join(part if i % 2 else _neutral_images(escape_html(part)) for i, part in enumerate(parts))
    return demote_headings(close_fence(escaped))


def _neutral_images(text: str) -> str:
    """`![alt](url)` shown as "!" and a link: nothing is loaded until someone clicks."""
    return text.replace("![", "\\![")


# Escaped with a backslash by `literal_markdown`: every ASCII punctuation mark that starts or
# delimits a Markdown construct (emphasis, links, images, headings, lists, tables, code, rules),
# and `:`, without which the browser's GFM autolinks take `http://host/x\.png` with its backslashes.
_LITERAL = {ord(c): "\\" + c for c in "\\`*_{}[]()#+-.!|~=:"}
_LITERAL |= {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}


def literal_markdown(text: str) -> str:
    """`text` as Markdown that displays exactly as typed: no link, image, heading or HTML.

    For what a user typed (their chat bubble, and the question the "not covered"
    reply quotes back): someone's `![x](http://host/x.png)` or `### HACKED` must not
    turn into an image fetched from that host or into a heading in the reply.
    CommonMark lets any ASCII punctuation be backslash-escaped; leading spaces
    become non-breaking ones, so an indented line is not read as a code block
    (which would show the backslashes).
    """
    lines = []
    for line in (text or "").split("\n"):
        body = line.lstrip(" \t")
        indent = len(line[: len(line) - len(body)].expandtabs(4))
        lines.append("&nbsp;" * indent + body.translate(_LITERAL))
    return "\n".join(lines)


_TYPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~=:])|&(amp|lt|gt);|^((?:&nbsp;)+)", re.MULTILINE)
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


def typed_text(markdown: str) -> str:
    """What the user typed, back from `literal_markdown` (to ask a question again as it was asked).

    Exact, but for tabs in a line's indentation, which come back as spaces.
    """

    def back(match: re.Match[str]) -> str:
        escaped, entity, indent = match.groups()
        if escaped:
            return escaped
        if entity:
            return _ENTITIES[entity]
        return " " * (len(indent) // len("&nbsp;"))

    return _TYPED.sub(back, markdown or "")


_MD = MarkdownIt("commonmark")
_SENTINEL = "zq9sourcesfollowzq9"  # a word no answer contains: where the sources would start


def close_fence(text: str) -> str:
    """`text` with a closing fence added if it ends inside a ``` or ~~~ code block.

    Answers are often cut at the model's token limit in the middle of a command
    ("```bash\naws s3 ..."); Markdown then reads everything after, the sources
    list included, as code. Whether a fence is open is decided by a CommonMark
    parser, not by pairing fence lines: a fence opened indented inside a list item
    is ended by the end of the item, not by a later fence at column 0, and that
    column-0 fence then opens a block of its own (the local model writes exactly
    this). The closer repeats the opener's marker and its container indentation
    (a list item's spaces, a quote's `>`), and is kept only if a parse confirms
    that text appended after it, as the sources are, is a paragraph of its own.
    """
    fence = _open_fence_at_end(text)
    if fence is None:
        return text
    prefix, marker = fence
    joined = text + ("" if text.endswith("\n") else "\n")
    candidates = [joined + prefix + marker, joined + marker]
    for candidate in candidates:
        if _open_fence_at_end(candidate) is None and _stays_outside(candidate):
            return candidate
    return candidates[0]  # pragma: no cover - no known Markdown gets here


def _open_fence_at_end(text: str) -> tuple[str, str] | None:
    """(container prefix, marker) of a fenced block that runs to the end of `text` unclosed."""
    lines = text.split("\n")
    count = len(lines) - (1 if text.endswith("\n") else 0)
    fences = [t for t in _MD.parse(text) if t.type == "fence" and t.map and t.map[1] >= count]
    if not fences:
        return None
    fence = fences[-1]
    start, end = fence.map
    content = fence.content
    content_lines = content.count("\n") + int(bool(content) and not content.endswith("\n"))
    if content_lines < end - start - 1:  # one line less than the block: its last line was the closer
        return None
    marker = fence.markup
    opener = lines[start]
    prefix = opener[: opener.find(marker)] if marker in opener else ""
    return re.sub(r"[^>\s]", " ", prefix), marker  # a list marker ("1. ", "- ") becomes its width in spaces


def _stays_outside(text: str) -> bool:
    """Whether a paragraph after `text` (as the sources block is) is top-level text, not code."""
    tokens = _MD.parse(text + "\n\n" + _SENTINEL)
    return any(
        t.type == "inline" and t.level == 1 and t.content == _SENTINEL and tokens[i - 1].level == 0
        for i, t in enumerate(tokens)
    )


def demote_headings(text: str) -> str:
    """Headings (`# x`, `x` over `===` or `---`) as bold lines: an answer's text sits under the page's
    own headings, and a model's `# comment`, meant for a code block, must not be a huge H1.

    Which lines are headings is decided by a CommonMark parser, so a `# comment` inside a code
    block stays code; a heading inside a list item or a quote keeps its marker before it.
    """
    if "#" not in text and "\n" not in text:
        return text
    lines = text.split("\n")
    dropped: set[int] = set()
    tokens = _MD.parse(text)
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or not token.map:
            continue
        start, end = token.map
        words = " ".join(tokens[i + 1].content.split())
        bold = f"**{words}**" if words else ""
        line = lines[start]
        if token.markup.startswith("#"):  # ATX: the container's marks (a list item's), then the #s
            shown = line[: line.index("#")] + bold
        else:  # setext: the text's lines, then the === or --- line under them
            shown = line[: len(line) - len(line.lstrip())] + bold
            dropped.update(range(start + 1, end))
        # a block of its own, as the heading was: not run into the paragraph before or after it
        before = "\n" if start > 0 and lines[start - 1].strip() else ""
        after = "\n" if end < len(lines) and lines[end].strip() else ""
        lines[start] = before + shown + after
    return "\n".join(line for n, line in enumerate(lines) if n not in dropped)


def readable_time(iso: str) -> str:
    """An ISO time ("2026-11-23T06:09:57+00:00") as people read it: "2026-11-23 06:09 UTC".

    A time without a zone is shown as written, to the minute; one that isn't ISO, unchanged.
    """
    try:
        moment = datetime.fromisoformat(iso.strip())
    except (AttributeError, ValueError):
        return iso
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_CITED = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def renumber_citations(text: str, sources: Sequence[Source]) -> tuple[str, list[Source]]:
    """The answer's `[n]` and its sources' numbers made 1, 2, 3… in the order the sources are listed.

    The numbers are the passages' ranks in the search (what the prompt numbered them), and only
    the passages the answer drew from are listed: [1] and [3] when the model cited those, or when
    the local model's extract took no line from passage 2. Renumbered, the list has no gap and the
    answer's citations still point at the same lines. Numbers inside code, and numbers of no listed
    source, are left as written.
    """
    numbers = {s.n: i for i, s in enumerate(sources, start=1)}
    if all(old == new for old, new in numbers.items()):
        return text, list(sources)

    def cite(match: re.Match[str]) -> str:
        cited = [part.strip() for part in match.group(1).split(",")]
        return "[" + ", ".join(str(numbers.get(int(n), n)) for n in cited) + "]"

    parts = _CODE.split(text or "")
    text = "".join(part if i % 2 else _CITED.sub(cite, part) for i, part in enumerate(parts))
    return text, [replace(s, n=numbers[s.n]) for s in sources]


def _link_text(text: str) -> str:
    return escape_html(text).replace("[", "\\[").replace("]", "\\]")


def sources_markdown(sources: list[Source], *, heading: str = "Sources", folded: bool = True) -> str:
    """A list of cited places as links, `[n] path › section`, and their quotes (`quotes_markdown`)."""
    if not sources:
        return ""
    lines = [f"\n\n**{heading}:**"]
    for s in sources:
        label = _link_text(s.source + (f" › {s.section}" if s.section and s.section != s.source else ""))
        url = s.url.replace(")", "%29").replace(" ", "%20")
        linked = url.startswith(("http://", "https://"))
        lines.append(f"- [{s.n}] [{label}]({url})" if linked else f"- [{s.n}] {label}")
    return "\n".join(lines) + quotes_markdown(sources, folded=folded)


QUOTES_SUMMARY = "What the sources say"
CLOSEST_SUMMARY = "What the closest passages say"


def quotes_markdown(
    sources: list[Source], *, folded: bool = True, summary: str = QUOTES_SUMMARY, named: bool = False
) -> str:
    """A folding block with each source's quoted lines (`Source.quote`), "" when none has any.

    Folded in the chat, so an answer stays short; opened, it lets a reader check the
    answer against the docs' own words (the Review tab shows it open). The quotes are docs text: shown like an answer
    (`safe_markdown`: code spans kept, HTML escaped, no image loaded), each in a
    block quote of its own. The blank lines around them let Markdown render inside
    the HTML `<details>` block. `named`: each quote says its file and section (when no
    sources list above it does).
    """
    quoted = [s for s in sources if s.quote.strip()]
    if not quoted:
        return ""
    parts = [f"\n\n<details{'' if folded else ' open'}><summary>{escape_html(summary)}</summary>"]
    for s in quoted:
        text = " ".join(safe_markdown(s.quote).split())
        place = f" {_link_text(s.source)} › {_link_text(s.section)}" if named and s.section else ""
        place = place or (f" {_link_text(s.source)}" if named else "")
        parts.append(f"> **[{s.n}]{place}** {text}")
    parts.append("</details>")
    return "\n\n".join(parts)


HELPED_QUESTION_CHARS = 120  # of an approved question named under an answer: a reminder, not a second post


def helped_markdown(helped_by: Sequence[Precedent], lowered_by: Sequence[Precedent] = ()) -> str:
    """The lines naming judged answers to similar questions that moved this answer's passages:
    approved ones whose cited passages it was given, rejected ones whose wrong passages it was not.

    The user sees why a passage ranks where it does, and that people checked answers on
    the same ground; questions (cut to `HELPED_QUESTION_CHARS`) and reviewers are shown as typed.
    """
    lifted = _named(helped_by, "**📌 Ranked with the help of approved answers to similar questions:**")
    return lifted + _named(
        lowered_by, "**⬇️ Ranked lower: the passages reviewers marked wrong for similar questions:**"
    )


def _named(precedents: Sequence[Precedent], heading: str) -> str:
    """`heading` and the precedents' questions and reviewers, as one paragraph ("" for none)."""
    if not precedents:
        return ""

    def cut(question: str) -> str:
        text = " ".join(question.split())
        if len(text) <= HELPED_QUESTION_CHARS:
            return text
        return text[:HELPED_QUESTION_CHARS].rsplit(" ", 1)[0] + " …"

    named = "; ".join(
        f"“{literal_markdown(cut(p.judged.question))}”"
        + (f" ({literal_markdown(p.judged.reviewer)})" if p.judged.reviewer else "")
        for p in precedents
    )
    return f"\n\n{heading} {named}"


def precedent_markdown(precedent: Precedent | None) -> str:
    """The line saying a reviewer judged an earlier answer to this question, and that answer folded.

    Approved: the user can read what a person confirmed. Rejected: the user is warned
    before trusting a new answer on the same point. Either way with the reviewer's comment. The
    reviewer's words and the question are shown as typed; the earlier answer like an answer.
    """
    if precedent is None:
        return ""
    judged = precedent.judged
    who = ", ".join(filter(None, [literal_markdown(judged.reviewer), judged.time[:10]]))
    about = f" ({who})" if who else ""
    said = f" They said: “{literal_markdown(judged.comment.strip())}”" if judged.comment.strip() else ""
    if judged.verdict == "good":
        line = f"**✅ A reviewer approved an earlier answer to this question**{about}.{said}"
    else:
        line = f"**⚠️ A reviewer marked an earlier answer to this question wrong**{about}.{said}"
    earlier = "\n".join(f"> {row}" for row in safe_markdown(judged.answer.strip()).splitlines())
    return (
        f"\n\n{line}\n\n<details><summary>The earlier answer</summary>\n\n"
        f"> **{literal_markdown(judged.question.strip())}**\n>\n{earlier}\n\n</details>"
    )
