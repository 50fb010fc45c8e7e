"""The web app: one FastAPI server with the Gradio UI at / and Label Studio's webhook beside it.

    python app.py            # or `make run`, which also installs, ingests and starts Label Studio
    python app.py prompt status|draft|try VERSION|adopt VERSION|restore   # the Review tab's prompt panel

This module only wires: qa/ answers, feedback/ logs and syncs, ui/ renders.
With no OPENAI_API_KEY / OPENAI_BASE_URL it starts the embedded local model
(qa.local_llm) and stops it on exit.
"""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TextIO

import gradio as gr
from fastapi import FastAPI

from feedback.config import with_local_label_studio
from feedback.log import FeedbackLog
from feedback.sync import SyncWorker
from feedback.webhook import webhook_router
from qa.refresh import DocsRefresher
from qa.store import DocStore, IndexState, store_failures
from settings import Settings, SettingsError, get_settings
from ui.accounts import AccountError, Accounts
from ui.chat import build_chat_tab
from ui.context import AppContext
from ui.conversations import ConversationStore
from ui.review import build_review_tab

log = logging.getLogger("app")


def build_context(settings: Settings, *, llm=None, judge_llm=None, revise_llm=None) -> AppContext:  # noqa: ANN001
    """Open the store, the answer chain and the feedback log (no server started here).

    With nothing ingested yet the chain is None; `AppContext.refresh` opens it once an
    ingest has run, so the page starts answering without a restart. `llm`, `judge_llm` and
    `revise_llm`: the chat models to answer, to pre-rate and to draft prompt revisions with
    instead of the settings' (the tests' stand-ins); PRE_RATE still decides whether answers
    are pre-rated.
    """
    from qa.judge import make_judge
    from qa.llm import model_label, uses_local_model
    from qa.revise import make_reviser

    store = DocStore(settings.index_dir)

    def open_chain():  # noqa: ANN202 - AnswerChain is imported lazily (torch, the model)
        from qa.chain import AnswerChain
        from qa.precedents import JudgedAnswers
        from qa.retrieval import open_retriever

        with store_failures(settings.index_dir):
            retriever = open_retriever(settings)
            match = settings.reviewed_answer_match  # reviewers' verdicts reused: ui.context feeds them
            precedents = (
                JudgedAnswers(retriever.embeddings, match, related_from=settings.reviewed_sources_match)
                if match > 0 or settings.reviewed_sources_match > 0
                else None
            )
            return AnswerChain(retriever, llm, settings=settings, precedents=precedents)

    problem = ""
    docs = IndexState()
    chain = None
    if store.exists():
        try:
            docs = store.read_state()
            chain = open_chain()
        except Exception as exc:  # shown on the page: the store, the model or a setting is wrong
            log.exception("cannot open the docs index")
            problem = str(exc)
    feedback_log = FeedbackLog(settings.feedback_db)
    return AppContext(
        settings=settings,
        log=feedback_log,
        conversations=ConversationStore(settings.conversations_db),
        chain=chain,
        docs=docs,
        model_label=model_label(settings),
        sync=SyncWorker(feedback_log, settings),
        local_model=llm is None and uses_local_model(settings),  # a model passed in is not the bundled one
        problem=problem,
        read_docs=store.read_state,
        open_chain=open_chain,
        judge=make_judge(settings, judge_llm) if settings.pre_rates else None,
        reviser=make_reviser(settings, revise_llm),
        refresher=DocsRefresher(settings),
    )


def build_ui(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="Docs QA") as blocks:
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                build_chat_tab(ctx, blocks)
            with gr.Tab("Review", id="review") as review_tab:
                build_review_tab(ctx, review_tab)
    return blocks


def create_app(ctx: AppContext) -> FastAPI:
    """FastAPI app: /healthz, the webhook, and Gradio at /. The sync worker runs while it serves."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if ctx.sync is not None:
            ctx.sync.start()
        if ctx.refresher is not None:
            ctx.refresher.start()
        # the reviewers' verdicts to reuse, embedded before the first question needs them
        threading.Thread(target=ctx.refresh_precedents, kwargs={"wait": True}, daemon=True).start()
        try:
            yield
        finally:
            if ctx.refresher is not None:
                ctx.refresher.stop()
            if ctx.sync is not None:
                ctx.sync.stop()

    app = FastAPI(title="Docs QA", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        ctx.refresh()
        last = ctx.refresher.last if ctx.refresher else None
        return {
            "ok": True,
            "ingested": ctx.chain is not None,
            "commit": ctx.docs.commit,
            "docs_update": None if last is None else {"ok": last.ok, "outcome": ctx.refresher.outcome()},
        }

    app.include_router(
        webhook_router(ctx.log, ctx.settings, on_verdict=ctx.sync.pull_soon if ctx.sync else None)
    )
    blocks = build_ui(ctx)
    blocks.queue(default_concurrency_limit=16)
    accounts = Accounts(ctx.settings.data_dir)  # any account: everyone signs in (ui/accounts.py)
    return gr.mount_gradio_app(
        app,
        blocks,
        path="",
        footer_links=["api"],
        auth=accounts.check if accounts.enabled else None,
        auth_message="Sign in with the account made for you (python app.py users add NAME).",
    )


def users_command(settings: Settings, argv: list[str], out: TextIO | None = None) -> int:
    """`python app.py users add|remove|list`: the accounts that may sign in (none: no sign-in)."""
    import getpass

    parser = argparse.ArgumentParser(
        prog="python app.py users",
        description="Who may sign in. With no account the app is open to whoever reaches it; with one "
        "or more, everyone signs in (from the app's next start).",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="make an account, or give one a new password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    actions.add_parser("remove", help="delete an account").add_argument("name")
    actions.add_parser("list", help="the accounts")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    accounts = Accounts(settings.data_dir)
    try:
        was_on = accounts.enabled
        if args.action == "add":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            else:
                password = getpass.getpass(f"Password for {args.name}: ")
                if getpass.getpass("Again: ") != password:
                    print("error: the two passwords differ; nothing changed", file=sys.stderr)
                    return 2
            new = accounts.add(args.name, password)
            print(f"{'Added' if new else 'New password for'} {args.name.strip()}.", file=out)
            if not was_on:
                print("Sign-in is on from the app's next start: restart it if it is running.", file=out)
        elif args.action == "remove":
            if not accounts.remove(args.name):
                print(f"error: there is no account {args.name!r} (python app.py users list)", file=sys.stderr)
                return 2
            print(f"Removed {args.name.strip()}.", file=out)
            if not accounts.enabled:
                print("No account is left: the app is open to all from its next start.", file=out)
        else:
            names = accounts.names()
            print("\n".join(names) if names else "No accounts: the app asks no one to sign in.", file=out)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def gaps_command(ctx: AppContext, argv: list[str], out: TextIO | None = None) -> int:
    """`python app.py gaps [--since DATE]`: the Review tab's "what the docs don't answer", as plain text."""
    from ui.gaps import docs_gaps, gaps_markdown

    parser = argparse.ArgumentParser(
        prog="python app.py gaps",
        description="The questions the docs were silent on or answered badly, grouped by what was asked.",
    )
    parser.add_argument("--since", help="only answers given on or after this date (2026-11-01) or time")
    args = parser.parse_args(argv)
    try:
        print(gaps_markdown(*docs_gaps(ctx, since=args.since), plain=True), file=out or sys.stdout)
    except ValueError as exc:  # a --since that is no date
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def prompt_command(ctx: AppContext, argv: list[str], out: TextIO | None = None) -> int:
    """`python app.py prompt …`: the Review tab's prompt panel from a shell (same files, same steps).

    A running app answers with a revision adopted here from its next question on
    (`AnswerChain.follow_prompts`). Returns the exit code; problems go to stderr.
    """
    from qa.llm import describe_error
    from qa.prompts import PromptFileError
    from qa.revise import RevisionError
    from ui.prompt_lab import PromptLab

    parser = argparse.ArgumentParser(
        prog="python app.py prompt", description="Revise the answer prompt from reviewers' feedback."
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="the prompt answers use, its reviewed answers, and the drafts")
    actions.add_parser("draft", help="draft a revision from the reviewed answers (needs the model)")
    actions.add_parser("try", help="answer the reviewed questions again with a draft").add_argument("version")
    actions.add_parser("adopt", help="answer with a draft from now on").add_argument("version")
    actions.add_parser("restore", help="go back to the bundled prompt (the drafts are kept)")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    lab = PromptLab(ctx)
    try:
        if args.action == "draft":
            draft = lab.draft()
            print(f"{lab.draft_markdown(draft, plain=True)}\n\n{lab.diff(draft)}\n", file=out)
        elif args.action == "try":
            trial = lab.try_draft(
                args.version, lambda n, total: print(f"answering {n}/{total}", file=sys.stderr)
            )
            for row in trial.rows:
                now = row.error or (
                    "docs found silent" if row.abstained else row.pre_rating or "not pre-rated"
                )
                print(f"- was {row.verdict}, now {now}: {row.question}", file=out)
            print(f"{trial.summary}\n", file=out)
        elif args.action == "adopt":
            print(f"Answers use {lab.adopt(args.version).version} from the next question on.\n", file=out)
        elif args.action == "restore":
            print(f"{lab.go_back()}\n", file=out)
    except (RevisionError, PromptFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the model's error, in words a person can act on
        log.debug("prompt %s failed", args.action, exc_info=True)
        print(f"error: {describe_error(exc, ctx.settings)}", file=sys.stderr)
        return 2
    print(lab.status_markdown(plain=True), file=out)
    for version in lab.files.versions():
        try:
            draft = lab.files.get(version)
        except (RevisionError, PromptFileError) as exc:
            print(f"  {version}: unreadable ({exc})", file=out)
            continue
        adopted = f", adopted {draft.adopted_at[:16].replace('T', ' ')} UTC" if draft.adopted_at else ""
        tried = draft.trial.summary if draft.trial else "not tried"
        print(f"  {version} (revises {draft.prompt.get('based_on')}{adopted}): {tried}", file=out)
    return 0


@contextmanager
def running_app(settings: Settings, *, model: bool = True) -> Iterator[AppContext]:
    """The app's context while the block runs, with the bundled local model when no other is set.

    `model=False`: no model server (commands that only read and write files). Raises
    LocalLLMError when the local model can't start.
    """
    from qa import llm, local_llm

    server = (
        local_llm.start(settings, watch_parent=True) if model and llm.uses_local_model(settings) else None
    )
    if server is not None:
        log.info("local model %s on port %s", server.model, server.port)
    watchdog = threading.Event()
    if server is not None and server.owned:  # one we started: restart it if it dies
        threading.Thread(target=local_llm.keep_running, args=(settings, watchdog), daemon=True).start()
    try:
        ctx = build_context(settings)
        try:
            yield ctx
        finally:
            ctx.close()
    finally:
        watchdog.set()
        if server is not None and server.owned:
            local_llm.stop(settings)


class PortTaken(RuntimeError):
    """The app's port is in use: uvicorn would say only "[Errno 98] address already in use"."""


def port_taken(host: str, port: int) -> None:
    """Raise PortTaken, naming the fix, if (host, port) can't be bound now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # another problem (a host name to resolve, say): uvicorn says it
            raise PortTaken(
                f"port {port} on {host} is already in use (another `python app.py` or `make run`?). "
                f"Stop that, or choose another port: PORT={port + 1} in .env or the environment, or --port {port + 1}."
            ) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore"):  # a line per Label Studio pull, every 30 s
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from qa.local_llm import LocalLLMError

    try:
        if argv[:1] == ["users"]:
            return users_command(get_settings(), argv[1:])
        if argv[:1] == ["gaps"]:
            with running_app(get_settings(), model=False) as ctx:  # reads the log, embeds questions
                return gaps_command(ctx, argv[1:])
        if argv[:1] == ["prompt"]:
            model_needed = argv[1:2] in (["draft"], ["try"])  # the others only read and write files
            with running_app(get_settings(), model=model_needed) as ctx:
                return prompt_command(ctx, argv[1:])

        parser = argparse.ArgumentParser(
            usage="python app.py [--host HOST] [--port PORT] | python app.py gaps|prompt|users ...",
            description="Serve the docs QA app.",
            epilog="`python app.py prompt --help`: revise the answer prompt from reviewers' feedback. "
            "`python app.py gaps`: what the docs don't answer. "
            "`python app.py users add NAME`: sign-in for the people you name.",
        )
        parser.add_argument("--host", help="interface to bind (default HOST, 127.0.0.1)")
        parser.add_argument("--port", type=int, help="port (default PORT, 7860)")
        args = parser.parse_args(argv)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
        settings = with_local_label_studio(get_settings(**overrides))  # make run's Label Studio, if any
        port_taken(settings.host, settings.port)  # before the model starts, not after a minute of it

        import uvicorn

        with running_app(settings) as ctx:
            signing_in = Accounts(settings.data_dir).names()
            who = f" (sign-in: {len(signing_in)} account(s))" if signing_in else ""
            print(f"Docs QA on http://{settings.host}:{settings.port}{who}", flush=True)
            uvicorn.run(create_app(ctx), host=settings.host, port=settings.port, log_level="warning")
    except (LocalLLMError, SettingsError, PortTaken, AccountError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
