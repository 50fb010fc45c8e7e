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
    """Escape HTML outside code so it displays as typed."""
    parts = _CODE.split(text or "")
    return "".join(part if i % 2 else escape_html(part) for i, part in enumerate(parts))


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
