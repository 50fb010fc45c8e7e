"""Check a retrieval question set against the docs repo it was written for.

Why: a gold passage that moved, a fact with a typo or a stray field silently turns
an evaluation question into noise (it can never be answered, or is always
"answered"). Running this before using a set, and after the docs change, keeps
the numbers honest.

Usage:
    python eval/check_questions.py eval/dev.jsonl --repo /tmp/lsdocs --ref docs-2026-03
    python eval/check_questions.py eval/dev.jsonl --repo /tmp/lsdocs --ref docs-2026-03 \
        --old-ref docs-2025-08

`--repo` is any git clone of the docs (e.g. `git clone ../shared/corpora/label-studio-docs.bundle`);
files are read from `--ref` with git, so the working tree can be on any checkout.
With `--old-ref`, `2026-03-only` questions must have at least one fact that appears
nowhere in the older docs, and each fact of a `both` question must appear in one of its
gold sources there too (so the set can also be run against the older docs).

Prints one line per problem and exits 1 if there is any, else prints a summary and exits 0.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

KINDS = {
    "howto",
    "config",
    "api",
    "troubleshoot",
    "concept",
    "tags",
    "freshness",
    "unanswerable",
}
VERSIONS = {"both", "2026-03-only"}
FIELDS = {
    "id": str,
    "question": str,
    "gold_sources": list,
    "answer_facts": list,
    "kind": str,
    "version": str,
    "note": str,
}
ID_RE = re.compile(r"^[a-z]+-\d{3}$")


class GitError(RuntimeError):
    """A git command failed; the message says which and why."""


@dataclass
class DocsAtRef:
    """Read-only view of the docs repo at one ref, read through git (no checkout needed)."""

    repo: Path
    ref: str
    _paths: set[str] = field(default_factory=set)
    _texts: dict[str, str] = field(default_factory=dict)
    _grep: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.repo / ".git").exists() and not (self.repo / "HEAD").exists():
            raise GitError(f"{self.repo} is not a git repository")
        if self._run("rev-parse", "--verify", "--quiet", f"{self.ref}^{{commit}}").returncode != 0:
            raise GitError(f"ref {self.ref!r} not found in {self.repo} (try `git -C {self.repo} tag`)")
        listing = self._git("ls-tree", "-r", "--name-only", "-z", self.ref)
        self._paths = {p for p in listing.split("\0") if p}

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(self.repo), *args],
            check=False,  # callers decide which exit codes are errors
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )

    def _git(self, *args: str) -> str:
        proc = self._run(*args)
        if proc.returncode != 0:
            detail = proc.stderr.strip() or f"exit {proc.returncode}"
            raise GitError(f"git {' '.join(args)} failed in {self.repo}: {detail}")
        return proc.stdout

    def exists(self, path: str) -> bool:
        return path in self._paths

    def text(self, path: str) -> str:
        if path not in self._texts:
            self._texts[path] = self._git("show", f"{self.ref}:{path}")
        return self._texts[path]

    def files_containing(self, fact: str) -> list[str]:
        """Every file at the ref that contains `fact` (fixed string, case-insensitive)."""
        if fact not in self._grep:
            proc = self._run("grep", "-l", "-i", "-F", "-e", fact, self.ref, "--")
            if proc.returncode not in (0, 1):  # 1 means "no match"
                raise GitError(f"git grep {fact!r} {self.ref} failed: {proc.stderr.strip()}")
            prefix = f"{self.ref}:"
            self._grep[fact] = [line.removeprefix(prefix) for line in proc.stdout.splitlines() if line]
        return self._grep[fact]


def load_questions(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """Parse the JSONL file, returning (line number, object) pairs and parse problems."""
    rows: list[tuple[int, dict]] = []
    problems: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{lineno}: not valid JSON ({exc.msg}); fix the line")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path.name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            continue
        rows.append((lineno, obj))
    if not rows and not problems:
        problems.append(f"{path.name}: no questions found")
    return rows, problems


def check_format(where: str, q: dict) -> list[str]:
    """Field presence, types and allowed values; the rules the evaluator relies on."""
    problems: list[str] = []
    for name, typ in FIELDS.items():
        if name not in q:
            problems.append(f"{where}: missing field {name!r}")
        elif not isinstance(q[name], typ):
            problems.append(f"{where}: field {name!r} must be {typ.__name__}, got {type(q[name]).__name__}")
    extra = set(q) - set(FIELDS)
    if extra:
        problems.append(f"{where}: unknown field(s) {sorted(extra)}; allowed: {sorted(FIELDS)}")
    if problems:
        return problems
    if not ID_RE.match(q["id"]):
        problems.append(f"{where}: id {q['id']!r} should look like 'dev-001'")
    if not q["question"].strip():
        problems.append(f"{where}: empty question")
    if q["kind"] not in KINDS:
        problems.append(f"{where}: kind {q['kind']!r} not one of {sorted(KINDS)}")
    if q["version"] not in VERSIONS:
        problems.append(f"{where}: version {q['version']!r} not one of {sorted(VERSIONS)}")
    if q["kind"] == "freshness" and q["version"] != "2026-03-only":
        problems.append(f"{where}: freshness questions must have version '2026-03-only'")
    for name in ("gold_sources", "answer_facts"):
        items = q[name]
        if not all(isinstance(s, str) and s.strip() for s in items):
            problems.append(f"{where}: {name} must be a list of non-empty strings")
        if len(set(items)) != len(items):
            problems.append(f"{where}: {name} has duplicates")
    if q["kind"] == "unanswerable":
        if q["gold_sources"] or q["answer_facts"]:
            problems.append(f"{where}: unanswerable questions must have empty gold_sources and answer_facts")
    else:
        if not q["gold_sources"]:
            problems.append(f"{where}: answerable question needs at least one gold source")
        if not q["answer_facts"]:
            problems.append(f"{where}: answerable question needs at least one answer fact")
    for src in q["gold_sources"]:
        if isinstance(src, str) and (src.startswith(("/", "./")) or "\\" in src):
            problems.append(f"{where}: gold source {src!r} must be a repo-relative path with '/' separators")
    return problems


def check_against_docs(where: str, q: dict, docs: DocsAtRef) -> list[str]:
    """Gold files exist at the ref and every fact occurs verbatim in at least one of them."""
    problems: list[str] = []
    present = []
    for src in q["gold_sources"]:
        if docs.exists(src):
            present.append(src)
        else:
            problems.append(f"{where}: gold source {src!r} does not exist at {docs.ref}")
    texts = {src: docs.text(src).lower() for src in present}
    for fact in q["answer_facts"]:
        if not any(fact.lower() in text for text in texts.values()):
            elsewhere = docs.files_containing(fact)
            hint = f"; it does occur in {elsewhere[:3]}" if elsewhere else "; it occurs in no file at all"
            problems.append(f"{where}: fact {fact!r} not found in any gold source at {docs.ref}{hint}")
    return problems


def check_versions(where: str, q: dict, old: DocsAtRef) -> list[str]:
    """`2026-03-only` must not be answerable from the older docs; `both` must be."""
    if q["kind"] == "unanswerable" or not q["answer_facts"]:
        return []
    hits = {fact: old.files_containing(fact) for fact in q["answer_facts"]}
    if q["version"] == "2026-03-only":
        if all(hits.values()):
            found = {f: h[:2] for f, h in hits.items()}
            return [f"{where}: marked 2026-03-only but every fact already occurs at {old.ref}: {found}"]
        return []
    gold = [src for src in q["gold_sources"] if old.exists(src)]
    if not gold:
        return [f"{where}: marked 'both' but none of its gold sources exists at {old.ref}"]
    missing = [fact for fact, files in hits.items() if not set(files) & set(gold)]
    if missing:
        return [f"{where}: marked 'both' but fact(s) {missing} are in no gold source at {old.ref}"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path, help="JSONL question set, e.g. eval/dev.jsonl")
    parser.add_argument("--repo", type=Path, required=True, help="git clone of the docs (the bundle)")
    parser.add_argument("--ref", default="docs-2026-03", help="ref the gold files are checked at")
    parser.add_argument("--old-ref", default=None, help="older ref to check the 'version' field against")
    args = parser.parse_args(argv)

    if not args.questions.is_file():
        print(f"error: {args.questions} not found", file=sys.stderr)
        return 2
    try:
        docs = DocsAtRef(args.repo, args.ref)
        old = DocsAtRef(args.repo, args.old_ref) if args.old_ref else None
    except (GitError, FileNotFoundError) as exc:
        print(
            f"error: {exc}\nhint: clone the docs bundle and fetch its tags, then pass --repo/--ref",
            file=sys.stderr,
        )
        return 2

    rows, problems = load_questions(args.questions)
    seen_ids: Counter[str] = Counter()
    seen_questions: Counter[str] = Counter()
    for lineno, q in rows:
        where = f"{args.questions.name}:{lineno} ({q.get('id', '?')})"
        fmt = check_format(where, q)
        problems += fmt
        seen_ids[q.get("id", "")] += 1
        seen_questions[str(q.get("question", "")).strip().lower()] += 1
        if fmt:
            continue
        problems += check_against_docs(where, q, docs)
        if old is not None:
            problems += check_versions(where, q, old)
    problems += [f"{args.questions.name}: id {i!r} used {n} times" for i, n in seen_ids.items() if n > 1]
    problems += [
        f"{args.questions.name}: question repeated {n} times: {t!r}"
        for t, n in seen_questions.items()
        if n > 1
    ]

    for problem in problems:
        print(problem)
    valid = [q for _, q in rows if isinstance(q, dict)]
    kinds = Counter(q.get("kind") for q in valid)
    versions = Counter(q.get("version") for q in valid)
    files = {s for q in valid for s in q.get("gold_sources", []) if isinstance(s, str)}
    print(
        f"{args.questions}: {len(valid)} questions at {args.ref}"
        + (f" (versions checked against {args.old_ref})" if old else "")
        + f"; kinds {dict(sorted(kinds.items()))}; versions {dict(sorted(versions.items()))};"
        f" {len(files)} distinct gold files; {len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
