"""`python ingest.py` against fixture repos: incremental behaviour and bad input."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest
from gitrepo import ROOT, commit, git, page, summary, write

from ingest import IngestError, ingest_lock, run_ingest
from qa.adapter import ADAPTER_FILE
from qa.repo import RepoError
from qa.retrieval import open_retriever
from qa.store import DocStore, StoreError
from settings import Settings, get_settings


def ingest(repo: Path, ref: str = "", **kwargs) -> dict:
    """The public function behind `python ingest.py`, in-process (the model loads once)."""
    return asdict(run_ingest(get_settings(), repo=str(repo), ref=ref, progress=False, **kwargs))


def stored_sources() -> list[str]:
    return sorted(d.metadata["source"] for d in DocStore(get_settings().index_dir).all_documents())


def test_incremental_add_modify_rename_delete(docs_repo: Path, run_ingest_cli) -> None:
    first = summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1"))
    assert {k: first[k] for k in ("files_added", "files_changed", "files_deleted", "files_unchanged")} == {
        "files_added": 4,
        "files_changed": 0,
        "files_deleted": 0,
        "files_unchanged": 0,
    }
    assert (first["chunks_added"], first["chunks_deleted"], first["chunks_skipped"]) == (4, 0, 0)
    assert not (get_settings().index_dir / ADAPTER_FILE).exists()  # 4 chunks teach no query map
    assert first["commit"] == git(docs_repo, "rev-parse", "v1").strip()
    assert stored_sources() == ["a.md", "b.md", "c.md", "guide/d.md"]

    second = ingest(docs_repo, "v2")
    # a changed; b renamed to b2 (= b deleted + b2 added); c deleted; e added; d untouched.
    assert {k: second[k] for k in ("files_added", "files_changed", "files_deleted", "files_unchanged")} == {
        "files_added": 2,
        "files_changed": 1,
        "files_deleted": 2,
        "files_unchanged": 1,
    }
    assert (second["chunks_added"], second["chunks_deleted"], second["chunks_skipped"]) == (3, 3, 1)
    assert stored_sources() == ["a.md", "b2.md", "e.md", "guide/d.md"]  # nothing duplicated, nothing stale

    third = ingest(docs_repo, "v2")
    assert (third["chunks_added"], third["chunks_deleted"], third["chunks_skipped"]) == (0, 0, 4)
    assert third["files_unchanged"] == 4


def test_chunks_carry_source_title_section_anchor_commit(docs_repo: Path, run_ingest_cli) -> None:
    write(
        docs_repo,
        {
            "guide/setup.md": "---\ntitle: Setup guide\norder: 3\n---\n\n# Setup guide\n\nIntro text "
            "that is long enough to be its own chunk here.\n\n## Install with pip\n\n```bash\n"
            "# not a heading, a shell comment\npip install label-studio\n```\n\nThen run it and open "
            "the browser at the printed address.\n"
        },
    )
    sha = commit(docs_repo, "setup page")
    ingest(docs_repo, "main")
    docs = [
        d
        for d in DocStore(get_settings().index_dir).all_documents()
        if d.metadata["source"] == "guide/setup.md"
    ]
    install = next(d for d in docs if "pip install" in d.page_content)
    assert install.metadata["title"] == "Setup guide"
    assert install.metadata["section"] == "Install with pip"
    assert install.metadata["anchor"] == "install-with-pip"
    assert install.metadata["commit"] == sha
    assert "# not a heading, a shell comment" in install.page_content  # fenced code is not split on '#'
    assert install.page_content.startswith("Setup guide > Install with pip")
    assert "order: 3" not in "".join(d.page_content for d in docs)  # front matter stripped


def test_github_links_point_at_the_commit_and_anchor() -> None:
    from qa.chunking import chunk_markdown
    from qa.repo import github_web_base

    base = github_web_base("https://github.com/HumanSignal/label-studio.git")
    assert (
        base
        == github_web_base("git@github.com:HumanSignal/label-studio.git")
        == ("https://github.com/HumanSignal/label-studio")
    )
    (doc,) = chunk_markdown(
        "## Run it!\n\nUse `label-studio start` to start the server now.",
        source="docs/start.md",
        commit="abc123",
        web_base=base,
    )
    assert (
        doc.metadata["url"] == "https://github.com/HumanSignal/label-studio/blob/abc123/docs/start.md#run-it"
    )
    assert github_web_base("/srv/docs.bundle") == ""


def test_a_running_retriever_answers_from_a_new_ingest_without_a_restart(docs_repo: Path) -> None:
    ingest(docs_repo, "v1")
    retriever = open_retriever(get_settings())  # what the running app holds
    question = "what is the SUPPORT_REPORT_DELIVERY_URL setting?"
    assert "e.md" not in [d.metadata["source"] for d in retriever.search(question).documents]

    ingest(docs_repo, "v2")  # another process, in real life: `python ingest.py` beside the app

    assert retriever.search(question).documents[0].metadata["source"] == "e.md"
    assert not retriever.follow_ingest()  # nothing new since: no reload


def test_a_running_retriever_keeps_answering_when_the_new_index_cannot_be_used(docs_repo: Path) -> None:
    ingest(docs_repo, "v1")
    retriever = open_retriever(get_settings())
    store = DocStore(get_settings().index_dir)
    state = store.read_state()
    state.embedding_model = "openai:text-embedding-3-small"  # as `--reset` with EMBEDDINGS=openai leaves it
    store.write_state(state)

    result = retriever.search("how do I start the server with the --no-browser flag?")

    assert result.documents[0].metadata["source"] == "a.md"  # the index it had, not an error
    assert not retriever.follow_ingest()  # and it does not retry on every question


def test_a_damaged_store_says_so_and_reset_rebuilds_it(docs_repo: Path, run_ingest_cli) -> None:
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1"))
    chroma = get_settings().index_dir / "chroma"
    for path in chroma.rglob("*"):  # what a crash mid-write can leave behind
        if path.is_file():
            path.write_bytes(b"\0garbage" * 512)

    broken = run_ingest_cli("--repo", str(docs_repo), "--ref", "v2")

    assert broken.returncode == 2
    assert "is damaged" in broken.stderr and "python ingest.py --reset" in broken.stderr
    assert "Traceback" not in broken.stderr
    rebuilt = summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v2", "--reset"))
    assert rebuilt["chunks_added"] == 4 and stored_sources() == ["a.md", "b2.md", "e.md", "guide/d.md"]


def test_glob_selects_files(docs_repo: Path, run_ingest_cli) -> None:
    result = ingest(docs_repo, "v1", globs=["guide/**/*.md"])
    assert result["files_added"] == 1
    assert stored_sources() == ["guide/d.md"]


def test_a_narrower_glob_says_what_leaves_the_index(docs_repo: Path, run_ingest_cli) -> None:
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1"))

    narrower = run_ingest_cli("--repo", str(docs_repo), "--ref", "v1", "--glob", "guide/**/*.md")

    assert summary(narrower)["files_deleted"] == 3 and stored_sources() == ["guide/d.md"]
    assert "selection changed from **/*.md to guide/**/*.md: 3 file(s) outside it leave" in narrower.stderr
    again = run_ingest_cli("--repo", str(docs_repo), "--ref", "v1", "--glob", "guide/**/*.md")
    assert "selection changed" not in again.stderr


def test_bad_repo_url_is_a_clear_error(tmp_path: Path, run_ingest_cli) -> None:
    proc = run_ingest_cli("--repo", str(tmp_path / "no-such-repo"))
    assert proc.returncode == 2
    assert "neither a URL nor an existing path" in proc.stderr
    proc = run_ingest_cli("--repo", str(tmp_path))  # exists, but is no git repo
    assert proc.returncode == 2
    assert "is a folder but not a git repository" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_a_folder_inside_a_repo_and_an_empty_repo_are_named(
    docs_repo: Path, tmp_path: Path, run_ingest_cli
) -> None:
    inside = run_ingest_cli("--repo", str(docs_repo / "guide"))
    assert inside.returncode == 2
    assert f"--repo {docs_repo.resolve()} --glob 'guide/**/*.md'" in inside.stderr  # what to run instead
    empty = tmp_path / "new-docs"
    empty.mkdir()
    git(empty, "init", "-q")
    proc = run_ingest_cli("--repo", str(empty))
    assert proc.returncode == 2 and "has no commits yet" in proc.stderr
    assert "DOCS_REF" not in proc.stderr  # no setting to blame


def test_a_reset_with_a_typo_keeps_the_index(docs_repo: Path, run_ingest_cli) -> None:
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1"))
    before = stored_sources()
    for typo in (["--ref", "no-such-tag"], ["--glob", "nope/*.md"], ["--repo", str(docs_repo.parent)]):
        bad = run_ingest_cli("--reset", *typo)
        assert bad.returncode == 2, typo
        assert stored_sources() == before, typo  # checked before anything is deleted
    again = summary(run_ingest_cli())  # and the repo ingested is still known
    assert (again["files_unchanged"], again["chunks_added"]) == (4, 0)


def test_files_ingest_does_not_read_are_named(docs_repo: Path, run_ingest_cli) -> None:
    (docs_repo / "link.md").symlink_to("a.md")
    (docs_repo / "outside.md").symlink_to("/etc/hostname")
    commit(docs_repo, "links")
    write(docs_repo, {"a.md": page("Alpha", "An edit not committed yet."), "draft.md": page("Draft", "New.")})

    proc = run_ingest_cli("--repo", str(docs_repo), "--ref", "main")

    assert "not read: 2 symlink(s) or submodule(s) the globs select (link.md, outside.md)" in proc.stderr
    assert "only committed files are ingested: 2 file(s) have changes not committed" in proc.stderr
    assert "(a.md, draft.md)" in proc.stderr
    assert "link.md" not in stored_sources() and "draft.md" not in stored_sources()


def test_globs_may_be_given_comma_separated_as_in_docs_glob(docs_repo: Path, run_ingest_cli) -> None:
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1", "--glob", "guide/*.md, a.md"))
    assert stored_sources() == ["a.md", "guide/d.md"]


def test_a_local_clone_of_a_github_repo_links_to_github(docs_repo: Path, run_ingest_cli) -> None:
    git(docs_repo, "remote", "add", "origin", "git@github.com:acme/handbook.git")
    head = git(docs_repo, "rev-parse", "v1").strip()
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1", env={"DOCS_WEB_BASE": ""}))
    urls = {
        d.metadata["source"]: d.metadata["url"] for d in DocStore(get_settings().index_dir).all_documents()
    }
    assert urls["guide/d.md"] == f"https://github.com/acme/handbook/blob/{head}/guide/d.md"


def test_a_bad_repo_keeps_the_previous_clone_and_index(docs_repo: Path, run_ingest_cli) -> None:
    before = summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1"))
    clone = get_settings().repo_dir
    assert (clone / ".git").is_dir()

    bad = run_ingest_cli("--repo", str(docs_repo.parent))  # exists, but is no git repo

    assert bad.returncode == 2 and "not a git repository" in bad.stderr
    assert (clone / ".git").is_dir()  # a clone of a big remote is not thrown away for a typo
    again = summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1"))
    assert (again["files_unchanged"], again["commit"]) == (4, before["commit"])


def test_ingest_without_arguments_updates_the_docs_ingested_before(docs_repo: Path, run_ingest_cli) -> None:
    first = summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1", "--glob", "*.md"))

    again = run_ingest_cli()  # not the default GitHub repo: the one ingested, at its ref, with its glob
    assert summary(again) == {**summary(again), "files_unchanged": 3, "commit": first["commit"]}
    assert "updating the docs ingested before" in again.stderr
    newer = summary(run_ingest_cli("--ref", "v2"))  # the same repo, another ref
    assert (newer["files_added"], newer["files_deleted"]) == (2, 2) and stored_sources() == [
        "a.md",
        "b2.md",
        "e.md",
    ]
    assert summary(run_ingest_cli("--reset"))["chunks_added"] == 3  # rebuilt from the same repo at v2
    switched = run_ingest_cli(
        env={"DOCS_REPO": str(docs_repo.parent / "handbook")}
    )  # a repo named in .env wins
    assert switched.returncode == 2 and "handbook" in switched.stderr


def test_a_dotenv_copied_from_the_example_keeps_updating_the_docs_ingested_before(
    docs_repo: Path, tmp_path: Path
) -> None:
    """`cp .env.example .env`, as the README says, must not send the next update back to GitHub."""
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    shutil.copy(ROOT / ".env.example", workdir / ".env")

    def ingest_here(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, str(ROOT / "ingest.py"), *args, "--json"]
        return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600)

    first = summary(ingest_here("--repo", str(docs_repo), "--ref", "v1", "--glob", "*.md"))
    again = ingest_here()

    assert summary(again) == {**summary(again), "files_unchanged": 3, "commit": first["commit"]}
    assert "updating the docs ingested before" in again.stderr


def test_env_example_describes_every_setting() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    described = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert {name.upper() for name in Settings.model_fields} <= described


def test_unknown_ref_is_a_clear_error(docs_repo: Path) -> None:
    with pytest.raises(RepoError, match="'no-such-tag' was not found"):
        ingest(docs_repo, "no-such-tag")


def test_a_docs_ref_left_in_the_settings_for_another_repo_is_named(
    docs_repo: Path, run_ingest_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    bad = run_ingest_cli("--repo", str(docs_repo), env={"DOCS_REF": "docs-2026-03"})

    assert bad.returncode == 2 and "'docs-2026-03' was not found" in bad.stderr
    assert "DOCS_REF=docs-2026-03 comes from the environment or .env" in bad.stderr
    assert "--ref ''" in bad.stderr
    assert summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "", env={"DOCS_REF": "docs-2026-03"}))


def test_a_setting_that_cannot_be_used_is_named_with_where_to_fix_it(
    docs_repo: Path, run_ingest_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    bad = run_ingest_cli(
        "--repo", str(docs_repo), env={"CHUNK_SIZE": "800 chars", "ABSTAIN_THRESHOLD": "high"}
    )

    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: CHUNK_SIZE='800 chars': Input should be a valid integer")
    assert "ABSTAIN_THRESHOLD='high': Input should be a valid number" in bad.stderr
    assert "Fix it in the environment or .env, or remove it for the default" in bad.stderr
    assert not get_settings().index_dir.exists()  # nothing was ingested with half a configuration


def test_no_matching_files_is_a_clear_error(docs_repo: Path) -> None:
    with pytest.raises(IngestError, match=r"No files match \*\*/\*\.rst"):
        ingest(docs_repo, "v1", globs=["**/*.rst"])


def test_broken_markdown_is_skipped_and_the_rest_ingested(docs_repo: Path, run_ingest_cli) -> None:
    ingest(docs_repo, "v2")
    write(
        docs_repo,
        {
            "a.md": "caf\xe9 in latin-1 ".encode("latin-1") * 5,
            "f.md": page("Phi", "Phi is a new page about keyboard shortcuts and hotkeys."),
            "g.md": "na\xefve, new and latin-1 ".encode("latin-1") * 5,
        },
    )
    commit(docs_repo, "break a, add f and a broken g")
    proc = run_ingest_cli("--repo", str(docs_repo), "--ref", "main", json_out=False)
    assert proc.returncode == 0, proc.stderr
    assert "skipping a.md: not UTF-8" in proc.stderr and "skipping g.md: not UTF-8" in proc.stderr
    # Skipped files count only as skipped: a broken a.md is not "changed", a broken new g.md not "added".
    assert proc.stdout.startswith(
        "files: 1 added, 0 changed, 0 deleted, 3 unchanged, 2 skipped | chunks: 1 added"
    )
    assert stored_sources() == ["a.md", "b2.md", "e.md", "f.md", "guide/d.md"]  # a.md's old chunk is kept
    # Once fixed, the file is picked up again.
    write(docs_repo, {"a.md": page("Alpha", "Alpha is fixed and mentions the --no-browser flag again.")})
    commit(docs_repo, "fix a")
    fixed = ingest(docs_repo, "main")
    assert (fixed["files_changed"], fixed["chunks_added"], fixed["chunks_deleted"]) == (1, 1, 1)
    assert (fixed["files_added"], fixed["files_skipped"]) == (0, 1)  # g.md is still broken


def test_broken_front_matter_and_nul_bytes_are_ingested_with_a_warning(
    tmp_path: Path, run_ingest_cli
) -> None:
    repo = tmp_path / "odd"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(
        repo,
        {
            "flow.md": "---\ntitle: [unclosed\ntier: enterprise\n---\n\n## Single sign-on\n\n"
            "Single sign-on is configured by the organization owner in the settings page.\n",
            "colons.md": "---\ntitle: Colons\ntier: : :\n---\n\n"
            "The colons page has an edition line that is not valid YAML at all.\n",
            "open.md": "---\ntitle: Open ended\n\n## Usage\n\n"
            "This page never closes its front matter block, so all of it is read as text.\n",
            "nul.md": page("Nul", "Nul bytes\x00 hide\x00 in this page about exporting snapshots."),
            "todo.md": "",
            "stub.md": "---\ntitle: Coming soon\n---\n",
        },
    )
    commit(repo, "odd pages")

    proc = run_ingest_cli("--repo", str(repo))

    result = summary(proc)
    assert (result["files_added"], result["files_skipped"]) == (6, 0)  # every page is still ingested
    assert "2 file(s) have no text to index (empty, or front matter only): stub.md, todo.md" in proc.stderr
    assert "flow.md: front matter is not valid YAML" in proc.stderr and "kept the fields tier" in proc.stderr
    assert "colons.md: front matter is not valid YAML (mapping values are not allowed here" in proc.stderr
    assert "open.md: front matter opens with --- but is never closed" in proc.stderr
    assert "nul.md: 2 NUL byte(s) removed" in proc.stderr
    docs = {d.metadata["source"]: d for d in DocStore(get_settings().index_dir).all_documents()}
    assert docs["flow.md"].metadata["tier"] == "enterprise"  # what parses is used
    assert docs["flow.md"].metadata["title"] == "Single sign-on"  # the broken title falls back to the heading
    assert docs["colons.md"].metadata["title"] == "Colons" and "tier" not in docs["colons.md"].metadata
    assert "never closes its front matter" in docs["open.md"].page_content
    assert docs["nul.md"].page_content.endswith("Nul bytes hide in this page about exporting snapshots.")
    assert not any("\x00" in d.page_content or "\x00" in str(d.metadata) for d in docs.values())

    # Run again: the same files are not warned about in full again, but one line still names them.
    write(repo, {"flow.md": "---\ntitle: [still unclosed\n---\n\nSingle sign-on, edited.\n"})
    commit(repo, "flow edited")
    again = run_ingest_cli("--repo", str(repo)).stderr
    assert "flow.md: front matter is not valid YAML" in again  # changed: its problem in full
    assert "colons.md: front matter" not in again and "2 NUL byte(s)" not in again
    assert "no text to index" not in again  # said once, when they came
    assert "3 unchanged file(s) still have the problems reported" in again
    assert "colons.md, nul.md, open.md" in again


def test_another_embedding_model_asks_for_reset(docs_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(docs_repo, "v1")
    monkeypatch.setenv("EMBEDDINGS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(
        StoreError, match=r"built with the embedding model 'local:all-MiniLM-L6-v2\+plain-w126'.*--reset"
    ):
        ingest(docs_repo, "v1")


def test_a_killed_run_leaves_a_consistent_store(tmp_path: Path, run_ingest_cli) -> None:
    repo = tmp_path / "big"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(
        repo,
        {
            f"p{i:03}.md": page(f"Page {i}", f"Page number {i} talks about topic {i * 7} in some detail.")
            for i in range(700)
        },
    )
    commit(repo, "many pages")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ingest.py"), "--repo", str(repo), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    seen = ""
    deadline = time.time() + 300
    while "512/700" not in seen and time.time() < deadline:  # one batch written, more to come
        seen += proc.stderr.read(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = DocStore(get_settings().index_dir)
    assert not store.exists()  # state is written last: the killed run never finished

    result = ingest(repo)
    assert result["files_added"] == 700
    assert result["chunks_added"] + result["chunks_skipped"] == 700
    assert result["chunks_skipped"] >= 256  # the batches written before the kill are not embedded again
    sources = stored_sources()
    assert len(sources) == len(set(sources)) == 700
    adapter = get_settings().index_dir / ADAPTER_FILE
    assert adapter.exists()  # 700 chunks: enough headings to learn the query map from
    fitted = adapter.stat().st_mtime_ns
    again = ingest(repo)
    assert (again["chunks_added"], again["chunks_deleted"]) == (0, 0)
    assert adapter.stat().st_mtime_ns == fitted  # nothing changed: not fitted again


@pytest.mark.parametrize(
    ("first", "then", "question", "source"),
    [
        ("v1", "v2", "what is the SUPPORT_REPORT_DELIVERY_URL setting?", "e.md"),
        ("v2", "v1", "what does LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK do?", "c.md"),
    ],
)
def test_a_running_retriever_follows_an_ingest_done_by_another_process(
    docs_repo: Path, run_ingest_cli, first: str, then: str, question: str, source: str
) -> None:
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", first))
    retriever = open_retriever(get_settings())  # the running app's, in this process
    assert source not in [d.metadata["source"] for d in retriever.search(question).documents]

    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", then))  # `python ingest.py` beside the app

    assert retriever.follow_ingest()
    assert retriever.search(question).documents[0].metadata["source"] == source
    assert retriever.state.commit == git(docs_repo, "rev-parse", then).strip()


def test_a_new_index_that_failed_to_load_is_tried_again_later_not_on_every_question(
    docs_repo: Path, run_ingest_cli, tmp_path: Path
) -> None:
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v1"))
    retriever = open_retriever(get_settings())
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "v2"))
    chroma = get_settings().index_dir / "chroma"
    shutil.copytree(chroma, tmp_path / "intact")
    for path in chroma.rglob("*"):  # unreadable for now, as a store caught mid-write by a copy can be
        if path.is_file():
            path.write_bytes(b"\0garbage" * 512)

    assert not retriever.follow_ingest()
    assert retriever.state.commit == git(docs_repo, "rev-parse", "v1").strip()  # what it still answers from
    shutil.rmtree(chroma)
    shutil.copytree(tmp_path / "intact", chroma)
    assert not retriever.follow_ingest()  # not tried again on the very next question

    retriever.reload_retry_seconds = 0  # ... but once the wait is over
    assert retriever.follow_ingest()
    assert retriever.state.commit == git(docs_repo, "rev-parse", "v2").strip()
    assert (
        retriever.search("the SUPPORT_REPORT_DELIVERY_URL setting").documents[0].metadata["source"] == "e.md"
    )


def test_docs_web_base_set_after_a_first_ingest_links_every_chunk(docs_repo: Path, run_ingest_cli) -> None:
    base = "https://github.com/HumanSignal/label-studio"
    write(
        docs_repo,
        {
            "tags/ellipse.md": page(
                "Ellipse",
                "| Param | Type | Description |\n| --- | --- | --- |\n"
                "| [opacity] | `float` | Opacity of the ellipses drawn on the image |\n"
                "| [canRotate] | `boolean` | Show or hide the rotation control of each ellipse |\n",
            )
        },
    )
    commit(docs_repo, "a tag page with a parameter table")
    summary(run_ingest_cli("--repo", str(docs_repo), "--ref", "main", env={"DOCS_WEB_BASE": ""}))
    store = DocStore(get_settings().index_dir)
    assert {d.metadata["url"] for d in store.all_documents()} == {""}  # a local path: no links
    write(docs_repo, {"a.md": page("Alpha", "Alpha now also explains the --host flag of the server.")})
    head = commit(docs_repo, "a changed")

    linked = run_ingest_cli("--repo", str(docs_repo), "--ref", "main", env={"DOCS_WEB_BASE": base + "/"})

    docs = store.all_documents()
    assert any(d.metadata.get("kind") == "row" for d in docs)  # table rows carry a link too
    assert all(d.metadata["url"].startswith(f"{base}/blob/") for d in docs), [d.metadata for d in docs]
    unchanged = [d for d in docs if d.metadata["source"] != "a.md"]
    assert summary(linked)["chunks_relinked"] == len(unchanged)  # not embedded again: only relinked
    assert summary(linked)["chunks_added"] == 1
    rows = sum(d.metadata.get("kind") == "row" for d in docs)
    totals = (summary(linked)["index_chunks"], summary(linked)["index_rows"])
    assert totals == (len(docs) - rows, rows) == (store.read_state().chunks, 2)  # the header's count
    ellipse = next(d for d in unchanged if d.metadata["source"] == "tags/ellipse.md")
    assert ellipse.metadata["url"] == f"{base}/blob/{head}/tags/ellipse.md"
    assert ellipse.metadata["commit"] == head  # the commit its link names
    again = run_ingest_cli(
        "--repo", str(docs_repo), "--ref", "main", env={"DOCS_WEB_BASE": base}, json_out=False
    )
    assert "relinked" not in again.stdout  # links as they should be: nothing to do
    assert f"index: {totals[0]} chunks + 2 rows" in again.stdout
    update = run_ingest_cli(json_out=False)  # a plain update (the app's scheduled one) without DOCS_WEB_BASE
    assert update.returncode == 0, update.stderr
    assert "relinked" not in update.stdout and f"links keep DOCS_WEB_BASE={base}" in update.stderr
    assert all(d.metadata["url"].startswith(f"{base}/blob/") for d in store.all_documents())

    unlinked = run_ingest_cli(
        "--repo", str(docs_repo), "--ref", "main", env={"DOCS_WEB_BASE": ""}, json_out=False
    )

    assert unlinked.returncode == 0, unlinked.stderr
    assert f"skipped ({len(docs)} relinked)" in unlinked.stdout and "relinked in place" in unlinked.stderr
    assert {d.metadata["url"] for d in store.all_documents()} == {""}
    assert stored_sources() == sorted(d.metadata["source"] for d in docs)  # nothing added or lost


def test_one_ingest_at_a_time_per_data_dir(docs_repo: Path, run_ingest_cli) -> None:
    with ingest_lock(get_settings().data_dir):  # an ingest is running (the app's scheduled one, say)
        with pytest.raises(IngestError, match=r"Another ingest is running on .* \(pid \d+\)\. Wait for it"):
            ingest(docs_repo, "v1")
        proc = run_ingest_cli("--repo", str(docs_repo), "--ref", "v1")
        assert proc.returncode == 2 and "Another ingest is running" in proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert ingest(docs_repo, "v1")["files_added"] == 4  # its turn once the other is done
