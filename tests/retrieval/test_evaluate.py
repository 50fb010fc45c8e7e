"""`python -m qa.evaluate`, the command the retrieval figures come from, on the fixture store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

QUESTIONS = [
    {
        "id": "q-flag",
        "question": "how do I start the server without opening a browser tab?",
        "gold_sources": ["guide/start.md"],
        "answer_facts": ["--no-browser"],
        "kind": "config",
    },
    {
        "id": "q-units",
        "question": "what unit are exported rectangle coordinates in?",
        "gold_sources": ["guide/export.md"],
        "answer_facts": ["percentages", "original_width"],
        "kind": "concept",
    },
    {"id": "q-moons", "question": "how many moons does jupiter have?", "kind": "unanswerable"},
    {"id": "q-captcha", "question": "can I put a captcha on the import dialog?", "kind": "unanswerable"},
]


def evaluate(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "qa.evaluate", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_evaluate_prints_metrics_by_kind_and_writes_every_question(docs_data: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n", encoding="utf-8")
    out = tmp_path / "report.json"
    run = evaluate(docs_data, str(questions), "--json", str(out))
    assert run.returncode == 0, run.stderr
    assert "By kind" in run.stdout and "guide/start.md" in run.stdout  # sources are not cut short
    report = json.loads(out.read_text())
    assert report["metrics"]["hit@5"] == 1.0 and report["metrics"]["fact_recall@5"] == 1.0
    assert report["metrics"]["abstain_rate"] == 1.0 and report["metrics"]["false_abstain_rate"] == 0.0
    assert (
        report["by_kind"]["config"]["mrr@5"] == 1.0 and report["by_kind"]["unanswerable"]["unanswerable"] == 2
    )
    rows = {r["id"]: r for r in report["questions"]}
    assert rows["q-captcha"]["unknown_terms"] == ["captcha"]  # why it abstained
    assert "unknown: captcha" in run.stdout


def test_evaluate_says_what_is_wrong_with_its_input(docs_data: Path, tmp_path: Path) -> None:
    missing = evaluate(docs_data, str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "nope.jsonl does not exist" in missing.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "ok?"}\n{not json\n', encoding="utf-8")
    bad = evaluate(docs_data, str(broken))
    assert bad.returncode == 2 and "broken.jsonl:2: not JSON" in bad.stderr
    (tmp_path / "ok.jsonl").write_text('{"question": "ok?"}\n', encoding="utf-8")
    nothing = evaluate(tmp_path / "empty", str(tmp_path / "ok.jsonl"))
    assert nothing.returncode == 2 and "run `python ingest.py` first" in nothing.stderr


def test_calibrate_measures_the_apps_store_and_says_what_a_question_file_lacks(
    docs_data: Path, tmp_path: Path
) -> None:
    both = tmp_path / "both.jsonl"
    both.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n", encoding="utf-8")
    run = evaluate(docs_data, str(both), "--calibrate")
    assert run.returncode == 0, run.stderr
    assert f"calibration over 2 answerable, 2 unanswerable questions in {docs_data}" in run.stdout
    # Both unanswerable ones are caught by the unknown-term rule at any threshold: nothing to calibrate
    # (suggesting the lowest threshold, 0.50, would switch the evidence check off on no evidence).
    assert "<- current" in run.stdout and "set ABSTAIN_THRESHOLD=" not in run.stdout
    assert "no threshold is suggested: no allowed threshold abstains on more" in run.stdout
    assert "Keep ABSTAIN_THRESHOLD=0.74" in run.stdout
    # One in the docs' own words (evidence 0.81, no unknown term): the threshold that silences it.
    dark = {"id": "q-dark", "question": "can the server start in a dark theme?", "kind": "unanswerable"}
    both.write_text("\n".join(json.dumps(q) for q in [*QUESTIONS, dark]) + "\n", encoding="utf-8")
    run = evaluate(docs_data, str(both), "--calibrate")
    assert "suggested: 0.82, the lowest threshold abstaining on 100% of the unanswerable" in run.stdout
    assert "set ABSTAIN_THRESHOLD=0.82" in run.stdout
    answerable = tmp_path / "answerable.jsonl"
    answerable.write_text("\n".join(json.dumps(q) for q in QUESTIONS[:2]) + "\n", encoding="utf-8")
    only = evaluate(docs_data, str(answerable), "--calibrate")
    assert only.returncode == 0, only.stderr
    assert "No unanswerable questions, so no threshold is suggested" in only.stdout
    assert "set ABSTAIN_THRESHOLD=" not in only.stdout
    unanswerable = tmp_path / "unanswerable.jsonl"
    unanswerable.write_text("\n".join(json.dumps(q) for q in QUESTIONS[2:]) + "\n", encoding="utf-8")
    none = evaluate(docs_data, str(unanswerable), "--calibrate")
    assert none.returncode == 0 and "no answerable questions, so no threshold is suggested" in none.stdout
