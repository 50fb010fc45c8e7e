"""The running app keeps its docs up to date: `python ingest.py` on INGEST_INTERVAL, or from the Review tab."""

from __future__ import annotations

import shutil
import time

from appkit import WEB, add_page, fake_llm, free_port, make_docs_repo, serve
from gradio_client import Client
from test_chat import healthz, text_of


def test_a_reviewer_updates_the_docs_and_the_chat_answers_from_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCS_WEB_BASE", WEB)
    from app import build_context
    from ingest import run_ingest
    from settings import get_settings

    repo = make_docs_repo(tmp_path / "docs")
    ctx = build_context(get_settings(port=free_port(), docs_repo=str(repo)), llm=fake_llm())
    assert ctx.chain is None
    with serve(ctx) as url:
        client = Client(url, verbose=False)
        status = client.predict(api_name="/update_docs")  # "Update the docs now": a first ingest
        assert "Last update" in status and "3 file(s) added, 0 changed, 0 deleted" in status
        assert "INGEST_INTERVAL" in status  # how to have it done on a schedule
        _, history = client.predict("how do I start without opening a browser tab?", [], api_name="/ask")
        assert "guide/start.md" in text_of(history[-1])

        add_page(repo, "guide/palette.md", "---\ntitle: Command palette\n---\n\nPress Ctrl+K to open it.\n")
        status = client.predict(api_name="/update_docs")
        assert "1 file(s) added, 0 changed, 0 deleted" in status and ctx.docs.commit[:12] in status
        _, history = client.predict("how do I open the command palette?", [], api_name="/ask")
        assert "guide/palette.md" in text_of(history[-1])
        commit = ctx.docs.commit

        shutil.move(repo, tmp_path / "moved")  # the repo is gone: the update fails, nothing is lost
        status = client.predict(api_name="/update_docs")
        assert "failed: " in status and "neither a URL nor an existing path" in status
        assert "The docs ingested before still answer." in status
        assert healthz(url)["docs_update"]["ok"] is False
        _, history = client.predict("how do I open the command palette?", [], api_name="/ask")
        assert "guide/palette.md" in text_of(history[-1]) and ctx.docs.commit == commit

        # a maintainer ingests by hand afterwards: the failed update is no longer the news
        add_page(tmp_path / "moved", "guide/more.md", "---\ntitle: More\n---\n\nMore words.\n")
        time.sleep(1.1)  # the state's time has whole seconds
        run_ingest(get_settings(), repo=str(tmp_path / "moved"), progress=False)
        ctx.refresh()
        outcome = healthz(url)["docs_update"]["outcome"]
        assert (
            outcome.endswith(f"by `python ingest.py`: now at commit {ctx.docs.commit[:12]}.")
            and ctx.docs.commit != commit
        )


def test_with_ingest_interval_set_the_app_follows_the_repo_by_itself(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    from app import build_context
    from ingest import run_ingest
    from settings import get_settings

    repo = make_docs_repo(tmp_path / "docs")
    settings = get_settings(port=free_port(), ingest_interval=2)  # DOCS_REPO left at Label Studio's
    first = run_ingest(settings, repo=str(repo), progress=False)  # a maintainer's `--repo`: it is followed
    ctx = build_context(settings, llm=fake_llm())
    with serve(ctx) as url:
        add_page(repo, "guide/palette.md", "---\ntitle: Command palette\n---\n\nPress Ctrl+K to open it.\n")
        deadline = time.time() + 120
        while healthz(url)["commit"] == first.commit and time.time() < deadline:
            time.sleep(0.5)
        assert healthz(url)["commit"] != first.commit, ctx.refresher.status()
        assert "checked for changes every 2 s (INGEST_INTERVAL)" in ctx.refresher.status()
        _, history = Client(url, verbose=False).predict(
            "how do I open the command palette?", [], api_name="/ask"
        )
        assert "guide/palette.md" in text_of(history[-1])
