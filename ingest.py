"""Ingest a git docs repo into the Chroma store, touching only what changed.

    python ingest.py                      # the default repo (DOCS_REPO), its default branch
    python ingest.py --repo PATH_OR_URL --ref v1.2 --glob 'docs/**/*.md'
    python ingest.py --reset              # rebuild from scratch (e.g. after changing EMBEDDINGS)
    python ingest.py --json               # stdout carries only the summary as JSON

Incremental sync is LangChain's indexing API with a persistent SQL record
manager (the pattern of chat-langchain's ingest): unchanged chunks are
skipped, chunks of changed, deleted or renamed-away files are removed, and
nothing is duplicated. A killed run leaves a consistent store: vectors are
written before their records, and the next run finishes the job.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import index
from tqdm import tqdm

from qa.adapter import ADAPTER_FILE, fit_adapter
from qa.chunking import chunk_markdown, included_files, is_row, page_title, row_documents
from qa.embeddings import EmbeddingModelError, embedding_name, make_embeddings
from qa.repo import Checkout, RefNotFound, RepoError, checkout, normalize_source, uncommitted
from qa.store import VOLATILE_KEYS, DocStore, IndexState, StoreError, chunk_key, store_failures
from settings import Settings, SettingsError, get_settings

log = logging.getLogger("ingest")
INDEX_BATCH = 256  # chunks per indexing batch: embedded together, sorted by length
LOCK_FILE = "ingest.lock"  # in DATA_DIR: held by the ingest running there (`ingest_lock`)


class IngestError(RuntimeError):
    """A fatal ingest problem; the message says what to do."""


@dataclass
class IngestSummary:
    files_added: int = 0
    files_changed: int = 0
    files_deleted: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    chunks_added: int = 0
    chunks_deleted: int = 0
    chunks_skipped: int = 0
    chunks_relinked: int = 0  # unchanged chunks whose link changed (DOCS_WEB_BASE): metadata updated
    # What the index holds afterwards: the chunks answers are made of (the app's header counts these)
    # and the table rows / release-note items embedded alone to find them (counted above with the chunks).
    index_chunks: int = 0
    index_rows: int = 0
    seconds: float = 0.0
    commit: str = ""

    def line(self) -> str:
        return (
            f"files: {self.files_added} added, {self.files_changed} changed, {self.files_deleted} deleted, "
            f"{self.files_unchanged} unchanged"
            + (f", {self.files_skipped} skipped" if self.files_skipped else "")
            + f" | chunks: {self.chunks_added} added, {self.chunks_deleted} deleted, "
            f"{self.chunks_skipped} skipped"
            + (f" ({self.chunks_relinked} relinked)" if self.chunks_relinked else "")
            + f" | index: {self.index_chunks} chunks + {self.index_rows} rows"
            + f" | {self.seconds:.1f} s | commit {self.commit[:12]}"
        )


class _CountingEmbeddings(Embeddings):
    """Passes calls through and advances the progress bar by the texts embedded."""

    def __init__(self, inner: Embeddings, bar: tqdm) -> None:
        self.inner, self.bar, self.name = inner, bar, embedding_name(inner)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.inner.embed_documents(texts)
        self.bar.update(len(texts))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def _read_markdown(path: Path) -> str:
    """The file's text; raises UnicodeDecodeError/OSError for a file to skip."""
    return path.read_bytes().decode("utf-8")


def includers(texts: dict[str, str]) -> dict[str, str]:
    """Included file → title of the page that includes it.

    An include is written relative to the docs' source folder, so it resolves to
    the file whose path ends with it, nearest to the including page. A fragment
    included by several pages takes the title of the one with its file name
    (`tags/view.md` for `includes/tags/view.md`), else the first by path.
    """
    found: dict[str, list[str]] = {}
    for path in sorted(texts):
        for target in included_files(texts[path]):
            target = target.removeprefix("./")
            matches = [p for p in texts if p == target or p.endswith("/" + target)]
            if matches:
                best = max(matches, key=lambda p: len(os.path.commonpath([p, path])))
                found.setdefault(best, []).append(path)
    return {
        fragment: page_title(texts[page], page)
        for fragment, pages in found.items()
        for page in [min(pages, key=lambda p: (Path(p).name != Path(fragment).name, p))]
    }


class _HoldWarnings(logging.Filter):
    """Holds back `qa.chunking`'s warnings about the given files (their first argument is the file)."""

    def __init__(self, files: Collection[str]) -> None:
        super().__init__()
        self.files, self.held = files, set()

    def filter(self, record: logging.LogRecord) -> bool:
        source = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if record.levelno == logging.WARNING and isinstance(source, str) and source in self.files:
            self.held.add(source)
            return False
        return True


@contextmanager
def warnings_once(unchanged: Collection[str]) -> Iterator[None]:
    """Each file's chunking warnings (broken front matter, NUL bytes) in full only when it changed.

    A file ingested before with the same content had them printed then: printing
    them again on every run buries what the run is about (the Label Studio docs'
    three Hexo scaffolds, on every incremental ingest). One line still names them.
    """
    hold = _HoldWarnings(unchanged)
    chunk_log = logging.getLogger("qa.chunking")
    chunk_log.addFilter(hold)
    try:
        yield
    finally:
        chunk_log.removeFilter(hold)
        if hold.held:
            names = sorted(hold.held)
            log.warning(
                "%d unchanged file(s) still have the problems reported when they were last ingested: %s",
                len(names),
                _some(names),
            )


def load_documents(
    co: Checkout, settings: Settings, keep_old, unchanged: Collection[str] = (), web_base: str | None = None
) -> tuple[list[Document], list[str]]:
    """Chunk every selected file. A broken file is skipped with a warning; its old chunks stay.

    All files are read before any is chunked: a fragment's title comes from the page including it.
    Each table row, and each item of a release note, also gets its own small document
    (`qa.chunking.row_documents`) unless TABLE_ROW_WEIGHT is 0. Files in `unchanged` (ingested
    before as they are) have their warnings summed up in one line (`warnings_once`). Links start
    with `web_base` (default: `link_base`).
    """
    docs: list[Document] = []
    skipped: list[str] = []

    def skip(path: str, exc: Exception) -> None:
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        log.warning("skipping %s: %s (fix the file and re-run; its previous chunks are kept)", path, reason)
        skipped.append(path)
        docs.extend(keep_old(path))

    texts: dict[str, str] = {}
    for f in co.files:
        try:
            texts[f.path] = _read_markdown(co.root / f.path)
        except (OSError, UnicodeDecodeError) as exc:
            skip(f.path, exc)
    included_by = includers(texts)
    web_base = link_base(settings, co) if web_base is None else web_base
    empty: list[str] = []
    with warnings_once(unchanged):
        for path, text in texts.items():
            try:
                chunks = chunk_markdown(
                    text,
                    source=path,
                    commit=co.commit,
                    web_base=web_base,
                    chunk_size=settings.chunk_size,
                    included_by=included_by.get(path, ""),
                )
            except ValueError as exc:
                skip(path, exc)
                continue
            if not chunks and path not in unchanged:
                empty.append(path)
            docs.extend(chunks)
            if settings.table_row_weight:
                docs.extend(row_documents(chunks))
    if empty:  # counted as added or changed like any file, so say why no chunk came of them
        log.warning(
            "%d file(s) have no text to index (empty, or front matter only): %s; they count as "
            "ingested, with 0 chunks",
            len(empty),
            _some(empty),
        )
    return docs, skipped


def link_base(settings: Settings, co: Checkout, given: str | None = None) -> str:
    """What chunk links start with: DOCS_WEB_BASE (or `given`, see `docs_web_base`), else the GitHub
    page of the repo's remote ("": none)."""
    given = settings.docs_web_base if given is None else given
    return given.rstrip("/") or co.web_base


def docs_web_base(settings: Settings, before: IndexState, same_repo: bool) -> str:
    """DOCS_WEB_BASE when set (even to ""), else the one the same repo was last ingested with.

    Like the repo, ref and globs (`what_to_ingest`): a maintainer who once ran
    `DOCS_WEB_BASE=https://… python ingest.py` must not lose every link to the app's scheduled
    update, or to a plain `python ingest.py`, that runs without it.
    """
    if "docs_web_base" in settings.model_fields_set or not same_repo or not before.docs_web_base:
        return settings.docs_web_base
    log.info(
        "links keep DOCS_WEB_BASE=%s, given before (set DOCS_WEB_BASE='' for the remote's links)",
        before.docs_web_base,
    )
    return before.docs_web_base


def _link_base(url: str) -> str:
    """The web base a chunk's link was made with (`{base}/blob/{commit}/{path}#anchor`), "" if none."""
    return url.partition("/blob/")[0]


def relink(store: DocStore, docs: list[Document], keys: list[str]) -> int:
    """Give stored chunks the links the current settings make, without embedding them again.

    `url` is kept out of the chunk key (it names a commit), so an ingest skips a chunk whose
    text is unchanged even when DOCS_WEB_BASE (or the remote) changed since it was stored.
    Left so, only changed files would get the new links and answers would cite a mix of
    linked and unlinked sources. A chunk whose link has another base (or none) takes the
    volatile metadata of its new version (url, and the commit that url names); its vector
    and text stay. `keys` are the docs' chunk keys, which the indexing API uses as Chroma ids.
    Returns how many stored documents (chunks and table rows) were updated.
    """
    fresh = dict(zip(keys, docs, strict=True))
    stored = {d.id: d.metadata for d in store.all_documents()}
    stale = [
        key
        for key, doc in fresh.items()
        if key in stored
        and _link_base(str(stored[key].get("url", ""))) != _link_base(doc.metadata.get("url", ""))
    ]
    store.update_metadatas(
        stale, [stored[key] | {k: fresh[key].metadata.get(k, "") for k in VOLATILE_KEYS} for key in stale]
    )
    return len(stale)


@contextmanager
def ingest_lock(data_dir: Path) -> Iterator[None]:
    """One ingest at a time per DATA_DIR (a maintainer's, the app's scheduled one, a second shell).

    Two at once would check out into the same clone and race on the record manager. An
    OS lock (flock) is released when its process dies, so a killed run never blocks the next.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IngestError(
                f"Another ingest is running on {data_dir} (pid {holder}). Wait for it to finish "
                "(a running app picks up its result by itself), then run this one again if still needed."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_ingest(
    settings: Settings,
    *,
    repo: str | None = None,
    ref: str | None = None,
    globs: list[str] | None = None,
    reset: bool = False,
    progress: bool = True,
) -> IngestSummary:
    """Bring the index in line with `repo`@`ref`. Returns what changed.

    Raises IngestError at once when another ingest holds DATA_DIR (`ingest_lock`).
    """
    with ingest_lock(settings.data_dir):
        return _ingest(settings, repo=repo, ref=ref, globs=globs, reset=reset, progress=progress)


def what_to_ingest(
    settings: Settings, before: IndexState, repo: str | None, ref: str | None, globs: list[str] | None
) -> tuple[str, str, list[str]]:
    """(repo, ref, globs): the arguments, else DOCS_REPO / DOCS_REF / DOCS_GLOB when set, else the
    docs ingested before, else the defaults.

    So `python ingest.py` after `--repo ../handbook --ref v2` updates the handbook at v2, as the
    app's scheduled update does, instead of replacing it with the default repo (or failing to
    reach it offline). A DOCS_REPO set in the environment or .env still switches repos.
    """
    chosen = settings.model_fields_set
    if repo is None and "docs_repo" not in chosen and before.repo:
        log.info(
            "updating the docs ingested before: %s (to ingest another repo, pass --repo or set DOCS_REPO)",
            before.repo,
        )
        repo = before.repo
        ref = before.ref if ref is None and "docs_ref" not in chosen else ref
        globs = globs or (before.globs if "docs_glob" not in chosen else None)
    return repo or settings.docs_repo, settings.docs_ref if ref is None else ref, globs or settings.docs_glob


def _say_what_is_left_out(repo: str, co: Checkout, globs: list[str]) -> None:
    """Warn of the selected files ingest does not read: symlinks and submodules, and, in a local
    work tree, edits not committed yet (a maintainer previewing them would otherwise wonder)."""
    if co.links:
        log.warning(
            "not read: %d symlink(s) or submodule(s) the globs select (%s); link targets are not "
            "followed, commit the file itself to ingest it",
            len(co.links),
            _some(co.links),
        )
    changed = uncommitted(repo, globs)
    if changed:
        log.warning(
            "only committed files are ingested: %d file(s) have changes not committed in %s (%s); "
            "commit them, then run this again",
            len(changed),
            repo,
            _some(changed),
        )


def _some(paths: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more


def _ingested_before(store: DocStore) -> IndexState:
    """The state of the index, or none if it can't be read (`--reset` is then the way out)."""
    try:
        return store.read_state()
    except StoreError:
        return IndexState()


def _ingest(
    settings: Settings,
    *,
    repo: str | None,
    ref: str | None,
    globs: list[str] | None,
    reset: bool,
    progress: bool,
) -> IngestSummary:
    started = time.perf_counter()
    store = DocStore(settings.index_dir)
    repo, ref, globs = what_to_ingest(settings, _ingested_before(store), repo, ref, globs)
    embeddings = make_embeddings(settings)
    co = checkout(repo, ref, settings.repo_dir, globs)
    if not co.files:
        raise IngestError(
            f"No files match {', '.join(globs)} in {repo} at {co.commit[:12]}. "
            "Check --glob / DOCS_GLOB (e.g. '**/*.md')."
        )
    if reset:  # only once the repo, ref and globs are known good: a typo must not cost the index
        store.reset()
    store.check_model(embeddings)
    _say_what_is_left_out(repo, co, globs)

    old = store.read_state()
    same_repo = old.repo == normalize_source(repo)
    old_files = old.files if same_repo else {}
    new_files = {f.path: f.blob for f in co.files}
    summary = IngestSummary(commit=co.commit)
    summary.files_deleted = sum(1 for p in old_files if p not in new_files)
    if same_repo and old.globs and old.globs != globs and summary.files_deleted:
        log.warning(
            "the file selection changed from %s to %s: %d file(s) outside it leave the index",
            " ".join(old.globs),
            " ".join(globs),
            summary.files_deleted,
        )

    record_manager = store.record_manager()
    # delay: a bar closed before it has anything to count never shows ("embedding: 0chunk")
    bar = tqdm(total=0, desc="embedding", unit="chunk", disable=not progress, file=sys.stderr, delay=0.1)
    unchanged = {p for p, b in new_files.items() if old_files.get(p) == b}
    given_base = docs_web_base(settings, old, same_repo)
    web_base = link_base(settings, co, given_base)  # the chunks' links, recorded to relink later
    with store.vectorstore(_CountingEmbeddings(embeddings, bar)) as vectorstore:
        docs, skipped_files = load_documents(
            co,
            settings,
            lambda path: store.documents_of(vectorstore, path),
            unchanged=unchanged,
            web_base=web_base,
        )
        skipped = set(skipped_files)
        # A skipped file counts only as skipped: its chunks were neither added nor changed.
        summary.files_skipped = len(skipped)
        taken = {p: b for p, b in new_files.items() if p not in skipped}
        summary.files_added = sum(1 for p in taken if p not in old_files)
        summary.files_changed = sum(1 for p, b in taken.items() if p in old_files and old_files[p] != b)
        summary.files_unchanged = len(unchanged - skipped)
        doc_keys = [chunk_key(d) for d in docs]
        keys = list(dict.fromkeys(doc_keys))
        bar.total = sum(1 for exists in record_manager.exists(keys) if not exists)
        if bar.total:
            bar.refresh()
        try:
            result = index(
                docs,
                record_manager,
                vectorstore,
                cleanup="full",
                source_id_key="source",
                key_encoder=chunk_key,
                batch_size=INDEX_BATCH,
            )
        finally:
            bar.close()
    summary.chunks_added = result["num_added"]
    summary.chunks_deleted = result["num_deleted"]
    summary.chunks_skipped = result["num_skipped"]
    # Reading every stored chunk is only worth it when the links' base changed (or is not recorded).
    if result["num_skipped"] and old.web_base != web_base:
        summary.chunks_relinked = relink(store, docs, doc_keys)
        if summary.chunks_relinked:
            log.info(
                "the links changed (DOCS_WEB_BASE or the remote): %d unchanged chunk(s) relinked in place, "
                "not embedded again",
                summary.chunks_relinked,
            )
    if settings.query_adapter and (
        result["num_added"] or result["num_deleted"] or not (store.dir / ADAPTER_FILE).exists()
    ):
        if progress:
            print("fitting the query adapter to the docs' headings…", file=sys.stderr, flush=True)
        fit_adapter(store.dir, *store.documents_and_vectors(), embeddings)
    elif not settings.query_adapter:
        (store.dir / ADAPTER_FILE).unlink(missing_ok=True)  # switched off: no stale map for later
    rows = {key for key, d in zip(doc_keys, docs, strict=True) if is_row(d)}
    summary.index_rows, summary.index_chunks = len(rows), len(set(doc_keys) - rows)
    state_files = dict(new_files)
    for path in skipped:  # a skipped file is not up to date: the next run must look at it again
        state_files.pop(path, None)
        if path in old_files:
            state_files[path] = old_files[path]
    store.write_state(
        IndexState(
            repo=normalize_source(repo),
            ref=ref,
            commit=co.commit,
            embedding_model=embedding_name(embeddings),
            files=state_files,
            chunks=summary.index_chunks,
            updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            globs=list(globs),
            web_base=web_base,
            docs_web_base=given_base,
        )
    )
    summary.seconds = round(time.perf_counter() - started, 2)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ingest a git docs repo into the local Chroma store.")
    parser.add_argument("--repo", help="git URL, local path or bundle (default: DOCS_REPO)")
    parser.add_argument("--ref", help="branch, tag or commit (default: DOCS_REF, else the default branch)")
    parser.add_argument(
        "--glob",
        action="append",
        help="files to ingest, repeatable or comma-separated (default: DOCS_GLOB, **/*.md)",
    )
    parser.add_argument("--reset", action="store_true", help="delete the index and rebuild it")
    parser.add_argument("--json", action="store_true", help="print only the summary, as one JSON object")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        settings = get_settings()
        with store_failures(settings.index_dir):
            globs = [g.strip() for value in args.glob or [] for g in value.split(",") if g.strip()] or None
            summary = run_ingest(settings, repo=args.repo, ref=args.ref, globs=globs, reset=args.reset)
    except (RepoError, IngestError, StoreError, EmbeddingModelError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, RefNotFound) and args.ref is None and args.repo and settings.docs_ref:
            # --repo names another repo, and the ref came from DOCS_REF (the environment or .env)
            print(
                f"DOCS_REF={settings.docs_ref} comes from the environment or .env: "
                "pass --ref with a branch, tag or commit of this one, or --ref '' for its default branch.",
                file=sys.stderr,
            )
        return 2
    except KeyboardInterrupt:
        # The same arguments: a plain `python ingest.py` would go back to the docs last ingested whole.
        again = " ".join(
            ["python ingest.py", *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))]
        )
        print(f"interrupted: the index is consistent; run `{again}` again to finish.", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
