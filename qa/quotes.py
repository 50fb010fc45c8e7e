"""The lines of a passage that answer a question: what a source shows under an answer.

A small model's answer is often loose (see the README), and even a strong one's
is a paraphrase. The sentences and table rows of each cited passage that share
the most words with the question let a reader check the answer against the docs
without opening the page. Measured with `bench/answer.py` on 40 public and dev
questions: the bundled local model's answers held 8 of their 58 expected facts,
the quotes under them 26.

Both the quotes and the tiny model's extract (`qa.prompts.focus_context`) cut
passages into the same units: a sentence of prose, or a whole table row (one
row is one fact: a parameter, its type, its meaning).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import pairwise

from langchain_core.documents import Document

QUOTE_CHARS = 320  # a few lines: enough for a row or two sentences, short enough to read at a glance
# A unit scoring under this share of the best one is padding, not quoted. Measured on the eleven
# question sets, the top passage's quote holds 37 % of the expected facts with it, 38 % without.
BEST_SHARE = 0.2

_STOPWORDS = frozenset(
    "a an the and or of to in on for with is are be can i my me how do does what whats which when where "
    "why it its this that from by as at you your there their so if not no yes get set use using up out "
    "every time want need way".split()
)
_LINK = re.compile(r"!\[[^\]]*\]\([^)]*\)|\[([^\]]*)\]\([^)]*\)")  # images dropped, links → their text
_NOISE = re.compile(r"<!--.*?-->|\{%.*?%\}|```\w*|~~~\w*", re.DOTALL)  # comments, Hexo tags, code fences
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # line breaks inside table cells
_HEADING = re.compile(r"#{1,6}\s")
_LEAD = re.compile(r"^(?:>\s*|[-*+]\s+|\d+[.)]\s+|!!!\s*\w+\s*)+")  # quote, list, admonition markers


def terms(text: str) -> set[str]:
    """The words that say what a text is about, as 6-letter prefixes (a poor man's stemmer:
    "timeout"/"timeouts", "collect"/"collects")."""
    return {w[:6] for w in re.findall(r"[a-z0-9_]+", text.lower()) if len(w) > 1 and w not in _STOPWORDS}


def units(text: str) -> list[str]:
    """Sentences of prose, whole rows of tables (a row is one fact: name, default, meaning)."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or set(line) <= set("|-: "):
            continue
        if line.startswith("|"):
            found.append(line)
        else:
            found.extend(part.strip() for part in re.split(r"(?<=[.!?])\s+", line) if part.strip())
    return found


def readable(unit: str) -> str:
    """A unit as a reader wants it quoted: a table row's cells joined by " · ", links as their
    text, no list or quote marker in front; "" for a heading. Code spans stay: they are the names to type."""
    unit = _BREAK.sub(" ", _NOISE.sub("", _LINK.sub(lambda m: m[1] or "", unit))).strip()
    if _HEADING.match(unit):  # the section's name, not what it says
        return ""
    if unit.startswith("|"):
        cells = [cell.strip() for cell in unit.strip("|").split("|")]
        return " · ".join(cell for cell in cells if cell)
    return _LEAD.sub("", unit).strip()


def quote(question: str, passage: str, *, title: str = "", max_chars: int = QUOTE_CHARS) -> str:
    """The passage's units that share the most words with the question, in passage order.

    A shared word counts more the fewer of the passage's units hold it: "Label Studio"
    is in every line of its docs and says nothing of which line answers; "browser"
    in one row of a table of flags says which row. Units scoring under a fifth of the best
    one's are left out, as padding (`BEST_SHARE`).

    Units not next to each other are joined by " … ", neighbouring table rows by "; ".
    A line that is the page `title` or starts with "title > " is a breadcrumb (a retrieved
    passage has one per section), not text. A passage that shares no word with the
    question is quoted from its start; a unit longer than `max_chars` is cut at a word.
    "" for a passage with no text.
    """
    wanted = terms(question)
    kept = [
        (text, unit.startswith("|"))
        for unit in units(passage)
        if not (title and (unit == title or unit.startswith(f"{title} > ")))
        and (text := readable(unit))
        and re.search(r"\w", text)
    ]
    found, rows = [text for text, _ in kept], [row for _, row in kept]
    if not found:
        return ""
    shared = [wanted & terms(text) for text in found]
    df = Counter(t for common in shared for t in common)
    score = [sum(math.log1p(len(found) / df[t]) for t in common) for common in shared]
    best = max(score)
    if best > 0:
        ranked = sorted(
            (i for i in range(len(found)) if score[i] > 0 and score[i] >= BEST_SHARE * best),
            key=lambda i: -score[i],
        )
    else:
        ranked = list(range(len(found)))  # nothing in common: the passage's opening says what it is
    chosen: list[int] = []
    used = 0
    for i in ranked:
        size = len(found[i]) + (3 if chosen else 0)
        if used + size > max_chars:
            if not chosen:  # the best unit alone is too long: its start, cut at a word
                chosen.append(i)
                found[i] = _cut(found[i], max_chars)
            break
        chosen.append(i)
        used += size
    chosen.sort()
    text = found[chosen[0]]
    for before, i in pairwise(chosen):
        if i != before + 1:
            text += " … " + found[i]
        elif rows[before] or rows[i]:
            text = text.removesuffix(".") + "; " + found[i]
        else:
            text += " " + found[i]
    return text


def source_quote(question: str, doc: Document) -> str:
    """`quote` of a retrieved passage, whose breadcrumb lines start with its page title."""
    return quote(question, doc.page_content, title=str(doc.metadata.get("title") or "").strip())


def _cut(text: str, max_chars: int) -> str:
    head = text[: max_chars - 1]
    if " " in head[max_chars // 2 :]:
        head = head[: head.rindex(" ")]
    return head.rstrip(" ,;:") + "…"


__all__ = ["QUOTE_CHARS", "quote", "readable", "source_quote", "terms", "units"]
