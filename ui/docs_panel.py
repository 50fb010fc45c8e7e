"""The Review tab's docs panel: when the docs were last updated, and a button to update them now.

Reviewers are the first to notice an answer from an outdated page ("that flag was renamed
last week"). They can update the docs here without a shell: the same `python ingest.py`
a maintainer runs (`qa.refresh`), pulling the repo and embedding only what changed. Its
outcome, and the INGEST_INTERVAL schedule, show here.
"""

from __future__ import annotations

import gradio as gr

from ui.context import AppContext
from ui.render import readable_time, safe_markdown


def docs_markdown(ctx: AppContext, *, updating: bool = False) -> str:
    """The docs being answered from, and the updates' schedule and last outcome."""
    docs = ctx.docs
    at = (
        f"{safe_markdown(docs.repo)} at commit `{docs.commit[:12]}`, ingested {readable_time(docs.updated_at)}"
        if docs.commit
        else "nothing ingested yet"
    )
    status = ctx.refresher.status() if ctx.refresher else ""
    head = "Docs (updating…)" if updating else "Docs"
    return f"**{head}:** {at}.\n\n<small>{safe_markdown(status)}</small>"


def build_docs_panel(ctx: AppContext, unlocked: gr.State, visibility: str, tab: gr.Tab | None) -> None:
    """Render the panel in the current page (`unlocked`: the review page's password gate)."""
    with gr.Row():
        status = gr.Markdown(docs_markdown(ctx), elem_id="docs-status")
        update = gr.Button("Update the docs now", size="sm", scale=0, min_width=200, elem_id="update-docs")

    def update_now(open_: bool):
        """Run the ingest command (minutes on a first ingest, seconds after); the chat then answers from it."""
        if not open_:
            raise gr.Error("Enter the reviewer password first.")
        if ctx.refresher is None:
            raise gr.Error("Updating the docs is not available in this app.")
        if ctx.refresher.running:
            gr.Info("An update is already running; its outcome shows here when it ends.")
            yield docs_markdown(ctx)
            return
        yield docs_markdown(ctx, updating=True)
        run = ctx.refresher.run()
        ctx.refresh()  # the chain answers from the new index from the next question on
        if run is not None and not run.ok:
            gr.Warning(f"The docs could not be updated: {run.error}")
        yield docs_markdown(ctx)

    update.click(update_now, unlocked, status, api_name="update_docs", api_visibility=visibility)
    if tab is not None:
        tab.select(lambda: docs_markdown(ctx), None, status, api_visibility="private")
