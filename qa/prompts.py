"""Prompt files and the text that fills them.

Prompts live in `qa/prompts/*.md`, not in code, so they can be read, diffed and tuned
on their own. Each file starts with front matter carrying a `version` (bump it whenever
the wording changes): the version is returned with every answer and stored with every
rating, so accuracy can be compared between prompt versions. The body is a list of
messages, each introduced by a `[system]`, `[user]` or `[assistant]` line, with
`{variable}` placeholders (LangChain f-string templates; write `{{` for a literal brace).

A file of the same name in DATA_DIR/prompts (`Settings.prompts_dir`) replaces the bundled
one: that is where a revised answer prompt goes when a maintainer adopts it (`qa.revise`),
and where anyone may put a hand-tuned one. It must fill the same variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate

from qa.quotes import terms, units

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"

ANSWER = "answer"  # for capable chat models
ANSWER_COMPACT = "answer-compact"  # for the tiny local model
CONDENSE = "condense"
JUDGE = "judge"  # pre-rates answers for reviewers (qa.judge)
ABSTAIN = "abstain"
REVISE = "revise"  # rewrites the answer prompt's instructions from reviewers' feedback (qa.revise)

ROLE_LINE = re.compile(r"^\[(system|user|assistant)\]\s*$", re.MULTILINE)
_ROLES = {"system": "system", "user": "human", "assistant": "ai"}


class PromptFileError(ValueError):
    """A prompt file is malformed; the message names the file and the problem."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class PromptSpec:
    """One prompt file: its name, version and messages (role, template text)."""

    name: str
    version: str
    messages: tuple[tuple[str, str], ...]
    path: Path
    description: str = ""
    # the other front-matter lines (`variables`, and a revision's `revises`, `based_on`, ...)
    meta: tuple[tuple[str, str], ...] = ()

    def template(self) -> ChatPromptTemplate:
        return ChatPromptTemplate.from_messages([(_ROLES[role], text) for role, text in self.messages])

    def variables(self) -> set[str]:
        """The `{placeholders}` the messages use (what the caller has to fill)."""
        return set(self.template().input_variables)

    def get(self, key: str, default: str = "") -> str:
        return dict(self.meta).get(key, default)

    def render(self) -> str:
        """The file text of this prompt: front matter, then its messages (`_parse` reads it back)."""
        lines = [f"version: {self.version}"]
        if self.description:
            lines.append(f"description: {_one_line(self.description)}")
        lines += [
            f"{key}: {_one_line(value)}" for key, value in self.meta if key not in ("version", "description")
        ]
        body = "\n".join(f"[{role}]\n{text.strip(chr(10))}" for role, text in self.messages)
        return "---\n" + "\n".join(lines) + "\n---\n" + body + "\n"

    def text(self, **values: Any) -> str:
        """Fill a single-message prompt (e.g. the abstain reply) as plain text."""
        return "\n\n".join(text.format(**values) for _, text in self.messages)


def _parse(path: Path) -> PromptSpec:
    raw = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", raw, re.DOTALL)
    if not match:
        raise PromptFileError(f"{path}: must start with front matter between '---' lines (with a version).")
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    if not meta.get("version"):
        raise PromptFileError(f"{path}: the front matter has no 'version: ...' line.")
    body = match.group(2)
    markers = list(ROLE_LINE.finditer(body))
    if not markers:
        raise PromptFileError(f"{path}: no [system], [user] or [assistant] line starts a message.")
    messages = []
    for i, marker in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(body)
        messages.append((marker.group(1), body[marker.end() : end].strip("\n")))
    return PromptSpec(
        name=path.stem,
        version=meta["version"],
        messages=tuple(messages),
        path=path,
        description=meta.get("description", ""),
        meta=tuple((k, v) for k, v in meta.items() if k not in ("version", "description")),
    )


def parse_prompt(path: Path) -> PromptSpec:
    """Read any prompt file (a bundled one, an override, a revision); PromptFileError says what is wrong."""
    try:
        return _parse(path)
    except OSError as exc:
        raise PromptFileError(f"Cannot read the prompt file {path}: {exc.strerror or exc}.") from exc
    except UnicodeDecodeError as exc:
        raise PromptFileError(f"{path}: not UTF-8 text ({exc.reason}).") from exc


@cache
def bundled_prompt(name: str) -> PromptSpec:
    """Read `qa/prompts/<name>.md` once per process."""
    path = PROMPT_DIR / f"{name}.md"
    if not path.is_file():
        raise PromptFileError(f"No prompt file {path}.")
    return _parse(path)


def load_prompt(name: str, override_dir: Path | None = None) -> PromptSpec:
    """The prompt `name`: `override_dir/<name>.md` when there is one, else the bundled file.

    An override must use exactly the bundled prompt's variables: one the app does not
    fill would fail every answer, and a missing `{context}` would answer without the docs.
    """
    bundled = bundled_prompt(name)
    path = override_dir / f"{name}.md" if override_dir is not None else None
    if path is None or not path.is_file():
        return bundled
    spec = parse_prompt(path)
    check_variables(spec, bundled.variables())
    return spec


def check_variables(spec: PromptSpec, wanted: set[str]) -> None:
    """PromptFileError unless `spec` uses exactly the variables in `wanted`."""
    used = spec.variables()
    problems = []
    if unknown := sorted(used - wanted):
        problems.append("uses " + ", ".join(f"{{{v}}}" for v in unknown) + ", which the app does not fill")
    if missing := sorted(wanted - used):
        problems.append("never uses " + ", ".join(f"{{{v}}}" for v in missing))
    if problems:
        filled = ", ".join(f"{{{v}}}" for v in sorted(wanted))
        raise PromptFileError(
            f"{spec.path}: {' and '.join(problems)}. The {spec.get('revises') or spec.path.stem} prompt has to use"
            f" {filled}"
            " (write {{ and }} for a literal brace); fix the file or delete it to use the bundled prompt."
        )


def answer_prompt_name(compact: bool) -> str:
    """Which answer prompt a chain uses: `answer-compact` for the tiny local model, else `answer`."""
    return ANSWER_COMPACT if compact else ANSWER


def answer_prompt(compact: bool, override_dir: Path | None = None) -> PromptSpec:
    return load_prompt(answer_prompt_name(compact), override_dir)


# --- filling the prompts ---------------------------------------------------------------


def _label(doc: Document) -> str:
    meta = doc.metadata
    source = str(meta.get("source") or "unknown file")
    section = str(meta.get("section") or meta.get("title") or "")
    return f"{source} — {section}" if section else source


def select_context(documents: Sequence[Document], max_docs: int, max_chars: int) -> list[Document]:
    """The chunks that go into the prompt, best first, within a character budget.

    The budget bounds prompt-processing time (the local model reads ~200 tokens/s) and
    keeps within small context windows. The first chunk is always kept, cut if needed.
    """
    chosen: list[Document] = []
    used = 0
    for doc in list(documents)[: max(max_docs, 1)]:
        text = doc.page_content
        if chosen and used + len(text) > max_chars:
            break
        if not chosen and len(text) > max_chars:
            doc = Document(page_content=text[:max_chars], metadata=doc.metadata)
        chosen.append(doc)
        used += len(doc.page_content)
    return chosen


def format_context(documents: Iterable[Document]) -> str:
    """Number the chunks [1]..[n] with their file and section, as the prompt cites them."""
    blocks = [f"[{n}] {_label(doc)}\n{doc.page_content.strip()}" for n, doc in enumerate(documents, start=1)]
    return "\n\n".join(blocks)


def focus_context(question: str, documents: Sequence[Document], max_chars: int) -> tuple[str, list[int]]:
    """Keep only the sentences and table rows that share words with the question.

    For the tiny local model: measured on public questions, SmolLM2-135M got 0 of 5 right
    when given three whole chunks and 1-2 of 5 with this ~800-character extract, and
    reading fewer tokens halves its time to first token. Returns the text (units in
    document order) and the indexes of the documents it drew from.
    """
    wanted = terms(question)
    scored = []
    for d, doc in enumerate(documents):
        for u, unit in enumerate(units(doc.page_content)):
            overlap = len(wanted & terms(unit))
            if overlap:
                scored.append((overlap - 0.1 * d, d, u, unit))  # ties go to the better-ranked chunk
    scored.sort(key=lambda item: -item[0])
    chosen: list[tuple[int, int, str]] = []
    used = 0
    for _, d, u, unit in scored:
        if used + len(unit) <= max_chars:
            chosen.append((d, u, unit))
            used += len(unit)
    if not chosen and documents:  # nothing overlaps: fall back to the start of the best chunk
        return documents[0].page_content[:max_chars].strip(), [0]
    chosen.sort()
    return "\n".join(unit for _, _, unit in chosen), sorted({d for d, _, _ in chosen})


def format_history(turns: Sequence[tuple[str, str]], max_chars_per_turn: int = 600) -> str:
    """Render (role, text) turns for the condense prompt, long turns shortened."""
    lines = []
    for role, text in turns:
        text = " ".join(text.split())
        if len(text) > max_chars_per_turn:
            text = text[:max_chars_per_turn] + " …"
        lines.append(f"{'User' if role == 'user' else 'Assistant'}: {text}")
    return "\n".join(lines)


def closest_documents(documents: Sequence[Document], limit: int = 3) -> list[int]:
    """Indexes of the first `limit` documents at distinct places (file — section): those the
    abstain reply names, and whose lines the chat quotes under it."""
    seen: dict[str, int] = {}
    for i, doc in enumerate(documents):
        if len(seen) == limit:
            break
        seen.setdefault(_label(doc), i)
    return list(seen.values())


def format_closest(documents: Sequence[Document], limit: int = 3) -> str:
    """The 'closest files I looked at' sentence of the abstain reply ('' when none)."""
    labels = [_label(documents[i]) for i in closest_documents(documents, limit)]
    if not labels:
        return ""
    return " The closest passages I looked at: " + "; ".join(labels) + "."
