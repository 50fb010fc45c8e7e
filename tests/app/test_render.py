"""What the chat shows of a message: HTML as text, and code blocks that end where the message ends."""

from __future__ import annotations

from qa.types import Source
from ui.render import close_fence, safe_markdown, sources_markdown


def test_an_answer_cut_inside_a_code_fence_keeps_the_sources_outside_it() -> None:
    cut = "Copy the files with:\n\n```bash\naws s3 cp <bucket> ./data"  # a token limit hit mid-command
    shown = safe_markdown(cut)
    assert shown == cut + "\n```"  # closed; inside code `<` stays as typed
    assert safe_markdown("~~~\nls -l\n") == "~~~\nls -l\n~~~"
    source = Source(n=1, source="guide/s3.md", section="Storage > S3", url="")
    message = shown + sources_markdown([source], heading="Closest sources (not cited by the model)")
    after_code = message.split("\n```\n", 1)[1]
    assert after_code.startswith("\n**Closest sources") and "Storage &gt; S3" in after_code


def test_a_fence_is_closed_with_its_own_marker_and_indentation() -> None:
    assert close_fence("1. Run:\n   ````sh\n   ls\n   ```") == "1. Run:\n   ````sh\n   ls\n   ```\n   ````"
    assert close_fence("```py\nx = 1\n```\n\nDone.") == "```py\nx = 1\n```\n\nDone."  # closed already
    assert close_fence("```\na\n~~~\n") == "```\na\n~~~\n```"  # ~~~ does not close ```
    assert close_fence("Use ```pip install x``` first.") == "Use ```pip install x``` first."  # inline code
    assert close_fence("") == "" and safe_markdown("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
