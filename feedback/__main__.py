"""Command line for the feedback log.

    python -m feedback sync                      # deliver pending ratings, pull reviewers' verdicts
    python -m feedback status                    # does Label Studio accept the key; pending, last error,
                                                 # project URL, is this data dir's webhook registered
                                                 # (exit 1 when it is unreachable or refuses)
    python -m feedback report [--since DATE]     # accuracy overall, per day, prompt version, model...,
                                                 # how often pre-ratings agree with reviewers, and
                                                 # what reviewers found wrong with rejected answers
    python -m feedback export --format csv|jsonl|openai-finetune [--since DATE] [--verdict good|bad]
                              [--output FILE]

Settings come from the environment and .env (DATA_DIR, LABEL_STUDIO_URL, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table

from feedback.config import missing_settings, pre_rating_summary, with_local_label_studio
from feedback.export import FORMATS, export, finetune_exchanges
from feedback.log import AccuracyRow, FeedbackLog, ProblemCounts, SyncStatus
from feedback.records import PROBLEM_FIX, PROBLEMS
from settings import Settings, get_settings

GROUPS = {
    "overall": "Overall",
    "day": "Per day",
    "prompt_version": "Per prompt version",
    "model": "Per model",
    "reused": "Per reused verdict",
    "pre_rating": "Per pre-rating",
}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def accuracy_table(title: str, rows: list[AccuracyRow]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("group", no_wrap=True)  # a day, prompt version or model: never cut or wrapped
    # Numbers: headers may wrap between words, never cut within one (min_width: the longest word).
    for header in ("rated", "good", "accuracy", "reviewed", "reviewer acc.", "user rated", "user acc."):
        table.add_column(
            header,
            justify="right",
            min_width=max(len(word) for word in header.split()),
            style="bold" if header == "accuracy" else "",
        )
    for r in rows:
        table.add_row(
            r.key,
            str(r.rated),
            str(r.good),
            _pct(r.accuracy),
            str(r.reviewed),
            _pct(r.reviewer_accuracy),
            str(r.user_rated),
            _pct(r.user_accuracy),
        )
    return table


def problems_table(problems: ProblemCounts) -> Table:
    """What reviewers found wrong with the answers they rejected: which part to fix first."""
    table = Table(title=f"What was wrong with the answers reviewers rejected ({problems.rejected})")
    table.add_column("problem")
    table.add_column("answers", justify="right")
    table.add_column("share", justify="right")
    table.add_column("points at")
    for key, label in PROBLEMS.items():
        if n := problems.counts.get(key, 0):
            table.add_row(label, str(n), f"{n / problems.rejected:.0%}", PROBLEM_FIX[key])
    if problems.unexplained:
        n = problems.unexplained
        table.add_row("(no reason given)", str(n), f"{n / problems.rejected:.0%}", "")
    return table


def say(console: Console, text: str) -> None:
    """Print one line of prose, cut into lines only on a terminal.

    Rich wraps text to the console's width, which is 80 columns (or COLUMNS) when stdout is
    a pipe or a file: "(last sync 2026-11-23 01:20:10" on one line and "UTC)." on the next,
    breaking what a reader greps or a log keeps. A terminal still gets word wrapping.
    `text` is plain (an error may hold "[...]"), never Rich markup.
    """
    console.print(text, markup=False, soft_wrap=not console.is_terminal)


def say_error(console: Console, text: str) -> None:
    """Print "error: <text>", the prefix in red on a terminal, on one line like `say`."""
    console.print(f"[red]error:[/red] {escape(text)}", soft_wrap=not console.is_terminal)


def print_whole(console: Console, renderable: RenderableType) -> None:
    """Print `renderable` whole, past the console's width if it must.

    Rich fits a table to the console (80 columns when piped) by wrapping headers and
    then cutting cells ("SmolLM2…", "66…"); a line longer than the screen loses less
    than a cut-off model name or number. Headers wrapping between words is fine.
    """
    lines = Segment.split_lines(console.render(renderable, console.options))
    texts = ["".join(segment.text for segment in line) for line in lines]
    if all(cell_len(text) <= console.width and "…" not in text for text in texts):
        console.print(renderable)
        return
    width = console.width
    console.width = Measurement.get(console, console.options.update_width(10_000), renderable).maximum
    try:
        console.print(renderable)
    finally:
        console.width = width


def print_status(
    console: Console, status: SyncStatus, headline: str | None = None, webhook: str | None = None
) -> None:
    """The log's delivery state; `headline` replaces its first line (and the last error's time),
    `webhook` the registered webhook's URL (with what Label Studio says of it)."""
    say(console, status.message if headline is None else headline)
    if status.project_url:
        say(console, f"  project:   {status.project_url}")
    if webhook or status.webhook:
        say(console, f"  webhook:   {webhook or status.webhook}")
    for note in status.notes:
        say(console, f"  note:      {note}")
    if status.last_success_at:
        say(console, f"  last sync: {status.last_success_at}")
    if status.last_error and headline is None:
        say(console, f"  error at:  {status.last_error_at}")


def _sync_status(feedback_log: FeedbackLog, settings: Settings) -> SyncStatus:
    return feedback_log.sync_status(missing=missing_settings(settings))


def cmd_sync(args: argparse.Namespace, console: Console) -> int:
    from feedback.sync import SyncWorker  # loads the Label Studio SDK: only here

    settings = with_local_label_studio(get_settings())
    with FeedbackLog(settings.feedback_db) as feedback_log:
        # Not the app: its webhook is the running app's to register. One made here would call this
        # shell's PORT/PUBLIC_URL (7860 by default), where no app may listen, and would not be the
        # hook `status` reports for this DATA_DIR.
        worker = SyncWorker(feedback_log, settings, register_webhook=False)
        if not worker.configured:
            say(
                console,
                f"Label Studio is not configured (set {' and '.join(missing_settings(settings))}): "
                "nothing to sync. "
                f"Feedback is kept locally in {feedback_log.path} "
                f"({feedback_log.pending_count()} rating(s) and Review-tab verdict(s) would be sent).",
            )
            return 0
        report = worker.flush(timeout=args.timeout, pull=not args.no_pull)
        carried = (
            f"{report.carried} verdict(s) of the project left behind made again here, "
            if report.carried
            else ""
        )
        done = (
            f"{report.created} task(s) created, {report.updated} updated, "
            f"{report.found} already there, {report.reviews} Review-tab verdict(s) sent, {carried}"
            f"{report.pulled} reviewer verdict change(s) pulled"
        )
        if report.error:
            # The error alone, not a summary that reads like success ("0 task(s) created ...").
            say_error(console, report.error)
            if any(
                (report.created, report.updated, report.found, report.reviews, report.carried, report.pulled)
            ):
                say(console, f"Before that: {done}.")
            if report.pending:
                say(
                    console,
                    f"{report.pending} pending, kept in {feedback_log.path}: the app's worker or the next "
                    "`python -m feedback sync` sends them once Label Studio accepts the settings.",
                )
            return 1
        say(console, f"Label Studio {worker.url}: {done}; {report.pending} pending.")
        return 0


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    """The log's counts and delivery state, and whether Label Studio accepts these settings now.

    Exit 1 when Label Studio is configured but unreachable or refuses the key: the log's
    "all delivered" is about the past, and a script checking the setup must not pass.
    """
    settings = with_local_label_studio(get_settings())
    with FeedbackLog(settings.feedback_db) as feedback_log:
        status = _sync_status(feedback_log, settings)
        check = hook = None
        if status.configured:
            from feedback.sync import check_connection, check_webhook  # loads the Label Studio SDK: only here

            check = check_connection(settings)
            if check.ok:  # is the hook this data dir's app registered there, and calling it?
                hook = check_webhook(settings, feedback_log.get_state())
        code = 1 if check and not check.ok else 0
        if args.json:
            out = status.as_dict()
            out["connection"] = check.as_dict() if check else None
            out["webhook_check"] = hook.as_dict() if hook else None
            print(json.dumps(out, indent=2))
            return code
        counts = feedback_log.counts()
        say(
            console,
            f"{counts['exchanges']} answer(s) logged, {counts['rated']} rated, "
            f"{counts['reviewed']} reviewed ({feedback_log.path})",
        )
        if check is None:
            print_status(console, status)
        elif check.ok:
            say(console, f"Label Studio at {check.url} answers and accepts the API key ({check.user}).")
            failed = None
            if status.last_error:  # by this or other settings, or while it was down: past, said so
                when = (status.last_error_at or "")[:19].replace("T", " ")
                failed = (
                    f"Label Studio: {status.pending} change(s) waiting; the last sync failed at {when} UTC: "
                    f"{status.last_error} (`python -m feedback sync` tries again now)."
                )
            print_status(console, status, failed, hook.detail if hook else None)
        else:
            say_error(console, check.error)
            print_status(
                console,
                status,
                f"Until that is fixed nothing reaches Label Studio: {status.pending} change(s) waiting; "
                f"{status.delivered} rated answer(s) delivered before.",
            )
    return code


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    settings = with_local_label_studio(get_settings())
    with FeedbackLog(settings.feedback_db) as feedback_log:
        groups = args.by or list(GROUPS)
        result = {by: feedback_log.accuracy(by, since=args.since) for by in groups}
        agreement = feedback_log.pre_rating_agreement(since=args.since)
        problems = feedback_log.problems(since=args.since)
        said = feedback_log.problems(since=args.since, by="user")
        if args.json:
            out: dict[str, object] = {by: [r.as_dict() for r in rows] for by, rows in result.items()}
            out["pre_rating_agreement"] = agreement.as_dict() | {
                "summary": pre_rating_summary(agreement, settings)
            }
            out["problems"] = problems.as_dict()
            out["user_problems"] = said.as_dict()
            print(json.dumps(out, indent=2))
            return 0
        say(
            console,
            "Accuracy = good / rated; a reviewer's verdict counts where there is one, "
            "the user's thumbs elsewhere.",
        )
        for by, rows in result.items():
            print_whole(console, accuracy_table(GROUPS[by], rows))
        if problems.rejected:
            print_whole(console, problems_table(problems))
        if said.rejected:
            say(console, said.summary)
        say(console, pre_rating_summary(agreement, settings))
        print_status(console, _sync_status(feedback_log, settings))
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    settings = with_local_label_studio(get_settings())
    with FeedbackLog(settings.feedback_db) as feedback_log:
        left_out = ""
        if args.format == "openai-finetune":
            _, abstained = finetune_exchanges(feedback_log, since=args.since)
            if abstained:
                left_out = (
                    f" ({len(abstained)} rated good left out: they said the docs don't cover the question, "
                    "a reply no model wrote)"
                )
        if args.output:
            path = Path(args.output)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as out:
                count = export(
                    feedback_log, args.format, out, since=args.since, verdict=args.verdict, system=args.system
                )
            tmp.replace(path)  # a failed export never leaves half a file behind
            say(Console(stderr=True), f"exported {count} exchange(s) as {args.format} to {path}{left_out}")
        else:
            count = export(
                feedback_log,
                args.format,
                sys.stdout,
                since=args.since,
                verdict=args.verdict,
                system=args.system,
            )
            say(Console(stderr=True), f"exported {count} exchange(s) as {args.format}{left_out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m feedback", description="The feedback log and its Label Studio sync."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sync = sub.add_parser(
        "sync",
        help="deliver pending ratings and Review-tab verdicts to Label Studio and pull reviewers' verdicts",
    )
    sync.add_argument("--no-pull", action="store_true", help="only deliver, do not pull annotations")
    sync.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this many seconds (default 120)"
    )
    sync.set_defaults(func=cmd_sync)

    status = sub.add_parser(
        "status",
        help="whether Label Studio accepts the API key (exit 1 if not); pending ratings, last error, project URL",
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    report = sub.add_parser("report", help="accuracy overall, per day, per prompt version, per model")
    report.add_argument("--since", help="only answers given on or after this date (2026-11-01) or time")
    report.add_argument(
        "--by", action="append", choices=list(GROUPS), help="only these groupings (repeatable)"
    )
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    report.set_defaults(func=cmd_report)

    exp = sub.add_parser("export", help="export the log")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("--since", help="only answers given on or after this date (2026-11-01) or time")
    exp.add_argument(
        "--verdict", choices=["good", "bad", "unrated"], help="only answers with this current verdict"
    )
    exp.add_argument("--output", "-o", help="file to write (default: stdout)")
    exp.add_argument(
        "--system", default="", help="openai-finetune: a system message to put first in each example"
    )
    exp.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console()
    try:
        code = args.func(args, console)
        sys.stdout.flush()  # a reader gone away shows up here, not in the interpreter's exit
        return code
    except ValueError as exc:  # bad --since, --verdict with openai-finetune, ...
        parser.exit(2, f"python -m feedback {args.command}: error: {exc}\n")
    except BrokenPipeError:
        # `... export | head` read all it wanted: stop quietly like cat or grep would, with the
        # status of a process ended by SIGPIPE (128 + 13), so `set -o pipefail` scripts can tell
        # the output was not read to the end. Commands only print after their work is done (and
        # export only reads the log), so nothing is lost. Point stdout at /dev/null so Python's
        # final flush of what is still buffered does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE
    return 0


if __name__ == "__main__":
    sys.exit(main())
