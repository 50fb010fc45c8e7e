"""Safe Markdown for the chat: text from users, docs and models shows as text, never as HTML.

Gradio renders chat messages as Markdown with HTML allowed. Label Studio's docs
(and so the answers) are full of XML-like tags (`<View>`, `<Choices>`), and a
question or a model could contain `<script>` or `<img onerror=…>`. Outside code
spans and fences, `&`, `<` and `>` are escaped; inside them Markdown already
shows text literally.
"""

from __future__ import annotations

import re

from qa.types import Source

_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_markdown(text: str) -> str:
    """Escape HTML outside code so it displays as typed, and close a code fence left open.

    Every piece of a message stays self-contained: what is appended after it
    (an answer's sources) never ends up inside its code block.
    """
    parts = _CODE.split(close_fence(text or ""))
    return "".join(part if i % 2 else escape_html(part) for i, part in enumerate(parts))


_FENCE_LINE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")


def close_fence(text: str) -> str:
    """`text` with a closing fence added if it ends inside a ``` or ~~~ code block.

    Answers are often cut at the model's token limit in the middle of a command
    ("```bash\naws s3 ..."); Markdown then reads everything after, the sources
    list included, as code. The fence is closed with the opener's own marker and
    indentation, so it also closes a block inside a list item, and is harmless
    where the opener was really an indented code line.
    """
    fence: tuple[str, str] | None = None  # (indentation, marker) of the open fence
    for line in text.splitlines():
        match = _FENCE_LINE.match(line)
        if not match:
            continue
        indent, marker, rest = match.groups()
        if fence is None:
            if not (marker[0] == "`" and "`" in rest):  # ```x``` on one line is inline code
                fence = (indent, marker)
        elif marker[0] == fence[1][0] and len(marker) >= len(fence[1]) and not rest.strip():
            fence = None
    if fence is None:
        return text
    return text + ("" if text.endswith("\n") else "\n") + fence[0] + fence[1]


def _link_text(text: str) -> str:
    return escape_html(text).replace("[", "\\[").replace("]", "\\]")


def sources_markdown(sources: list[Source], *, heading: str = "Sources") -> str:
    """A list of cited places as links: `[n] path › section`."""
    if not sources:
        return ""
    lines = [f"\n\n**{heading}:**"]
    for s in sources:
        label = _link_text(s.source + (f" › {s.section}" if s.section and s.section != s.source else ""))
        url = s.url.replace(")", "%29").replace(" ", "%20")
        linked = url.startswith(("http://", "https://"))
        lines.append(f"- [{s.n}] [{label}]({url})" if linked else f"- [{s.n}] {label}")
    return "\n".join(lines)
