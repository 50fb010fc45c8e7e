"""Export the feedback log: CSV and JSONL for analysis, OpenAI chat JSONL for fine-tuning.

The fine-tuning examples are the good answers a model wrote: a "the docs don't cover this"
reply (`Exchange.abstained`, a template no model wrote) is left out even when it was rated
good, since training on it teaches a model to refuse. CSV and JSONL keep every answer.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, TextIO

from feedback.log import Exchange, FeedbackLog, Verdict

Format = Literal["csv", "jsonl", "openai-finetune"]
FORMATS: tuple[str, ...] = ("csv", "jsonl", "openai-finetune")

CSV_COLUMNS = [
    "id",
    "time",
    "session",
    "question",
    "standalone_question",
    "answer",
    "verdict",
    "verdict_source",
    "user_rating",
    "user_comment",
    "reviewer_rating",
    "reviewer_comment",
    "reviewer_problems",
    "reviewer",
    "reviewer_source",
    "prompt_version",
    "model",
    "docs_commit",
    "latency_ms",
    "reused_from",
    "reused_verdict",
    "helped_by",
    "lowered_by",
    "pre_rating",
    "pre_rating_reason",
    "pre_rating_model",
    "pre_rating_prompt",
    "sources",
    "cited",
    "retrieved",
    "task_id",
]


def _sources(chunks: list[dict[str, Any]]) -> str:
    return "; ".join(
        str(c.get("source", "")) + (f"#{c['section']}" if c.get("section") else "") for c in chunks
    )


def csv_row(exchange: Exchange) -> dict[str, Any]:
    data = exchange.as_dict()
    row = {name: data.get(name) for name in CSV_COLUMNS}
    row["sources"] = _sources(exchange.cited or exchange.retrieved)
    row["cited"] = json.dumps(exchange.cited, ensure_ascii=False)
    row["retrieved"] = json.dumps(exchange.retrieved, ensure_ascii=False)
    row["helped_by"] = " ".join(exchange.helped_by)
    row["lowered_by"] = " ".join(exchange.lowered_by)
    row["reviewer_problems"] = " ".join(exchange.reviewer_problems)
    return {k: ("" if v is None else v) for k, v in row.items()}


def finetune_record(exchange: Exchange, system: str = "") -> dict[str, Any]:
    """One chat-format training example: the question and the answer reviewers (or users) found good.

    A follow-up ("and in YOLO?") is given as the standalone question it was answered as: alone,
    it would teach a model to answer a question it can't know the subject of.
    """
    messages = [{"role": "system", "content": system}] if system else []
    messages += [
        {"role": "user", "content": exchange.standalone_question or exchange.question},
        {"role": "assistant", "content": exchange.answer},
    ]
    return {"messages": messages}


def write(exchanges: Iterable[Exchange], fmt: Format, out: TextIO, *, system: str = "") -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for exchange in exchanges:
            writer.writerow(csv_row(exchange))
            count += 1
    elif fmt == "jsonl":
        for exchange in exchanges:
            out.write(json.dumps(exchange.as_dict(), ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "openai-finetune":
        for exchange in exchanges:
            out.write(json.dumps(finetune_record(exchange, system), ensure_ascii=False) + "\n")
            count += 1
    else:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return count


def finetune_exchanges(
    feedback_log: FeedbackLog, *, since: str | datetime | None = None
) -> tuple[list[Exchange], list[Exchange]]:
    """The good answers (reviewer verdict first, else thumbs) to train on, and the abstentions left out."""
    good = feedback_log.iter_exchanges(verdict="good", since=since)
    return [e for e in good if not e.abstained], [e for e in good if e.abstained]


def export(
    feedback_log: FeedbackLog,
    fmt: Format,
    out: TextIO,
    *,
    since: str | datetime | None = None,
    verdict: Verdict | None = None,
    system: str = "",
) -> int:
    """Write matching exchanges (oldest first) to `out`; returns how many.

    csv/jsonl export every exchange (rated or not) unless `verdict` narrows it;
    openai-finetune exports good ones only (reviewer verdict first, else thumbs), minus the
    "the docs don't cover this" replies (`finetune_exchanges`).
    """
    if fmt == "openai-finetune":
        if verdict not in (None, "good"):
            raise ValueError(
                "openai-finetune exports good answers only: drop --verdict or use --verdict good"
            )
        kept, _ = finetune_exchanges(feedback_log, since=since)
        return write(kept, fmt, out, system=system)
    return write(feedback_log.iter_exchanges(verdict=verdict, since=since), fmt, out, system=system)
