"""A docs set of a handful of chunks: what it plainly covers is answered, the off-topic still abstains.

BM25 over seven chunks can't tell much apart (the product's name is in every one, so it weighs
nothing) and the best cosine is a maximum over seven chunks: calibrated on 6,000 chunks, the
evidence gate silenced three of these seven covered questions before it was scaled by size.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.retrieval import SMALL_DOCS_CHUNKS, _Index

ROOT = Path(__file__).resolve().parents[2]

README = """# Frobnicator

Frobnicator is a command-line tool that frobnicates text files in place.

## Installation

Install frobnicator from PyPI with `pip install frobnicator`. Frobnicator needs Python 3.10 or later.

## Usage

Run `frobnicator path/to/file.txt` to frobnicate a file. Frobnicator writes a backup next to the file first.

## Configuration

Frobnicator reads `~/.frobnicator.toml`. The `frob_level` option sets how strongly text is frobnicated, \
from 1 (light) to 5 (heavy); the default is 3.

## Upgrading

Upgrade to the latest frobnicator release with `pip install -U frobnicator`. Your configuration file is kept.

## Troubleshooting

If frobnicator reports "permission denied", check that you can write to the file's folder.

## License

Frobnicator is released under the MIT license.
"""

COVERED = {
    "How do I upgrade frobnicator?": "pip install -U frobnicator",
    "What is frob_level?": "1 (light) to 5",
    "How do I install frobnicator?": "pip install frobnicator",
    "Where does frobnicator read its configuration from?": ".frobnicator.toml",
    "What license is frobnicator under?": "MIT",
    "frobnicator says permission denied, what do I do?": "write to the file",
    "Which Python version does frobnicator need?": "3.10",
}
OFF_TOPIC = [
    "What is the capital of France?",
    "How many moons does Jupiter have?",
    "How do I bake sourdough bread?",
]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    repo = root / "docs"
    repo.mkdir()
    (repo / "README.md").write_text(README, encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "docs"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    from ingest import run_ingest
    from settings import get_settings

    data = root / "data"
    run_ingest(get_settings(data_dir=data), repo=str(repo), progress=False)
    return data


@pytest.fixture(scope="module")
def small(small_data: Path):  # noqa: ANN201
    from qa.retrieval import open_retriever
    from settings import get_settings

    return open_retriever(get_settings(data_dir=small_data))


def test_a_seven_chunk_docs_set_answers_what_it_plainly_covers(small) -> None:  # noqa: ANN001
    assert small.size == 7
    for question, fact in COVERED.items():
        result = small.search(question)
        assert not result.abstain, (question, result.confidence)
        assert fact in result.documents[0].page_content, question


def test_a_seven_chunk_docs_set_still_abstains_off_topic(small) -> None:  # noqa: ANN001
    for question in OFF_TOPIC:
        result = small.search(question)
        assert result.abstain, (question, result.confidence)
    assert small.search("How many moons does Jupiter have?").unknown_terms == ["jupiter"]
    assert small.search("What is the capital of France?").confidence < 0.3  # by the score, far below


def test_only_a_docs_set_under_the_size_has_its_evidence_scaled() -> None:
    def scale(chunks: int) -> float:
        return _Index(docs=[None] * chunks).evidence_scale  # type: ignore[list-item]

    assert scale(7) == pytest.approx(math.log(8) / math.log(SMALL_DOCS_CHUNKS + 1))  # ~0.45
    assert scale(25) < scale(50) < scale(99) < 1.0
    assert scale(SMALL_DOCS_CHUNKS) == scale(6000) == 1.0  # the Label Studio docs score as before


def test_calibrating_on_the_apps_own_small_store(small_data: Path, tmp_path: Path) -> None:
    questions = tmp_path / "mine.jsonl"
    lines = [
        f'{{"question": "{q}", "gold_sources": ["README.md"], "answer_facts": ["{f}"]}}'
        for q, f in COVERED.items()
    ]
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def calibrate(path: Path) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"DATA_DIR": str(small_data)}
        command = [sys.executable, "-m", "qa.evaluate", str(path), "--calibrate"]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    only_answerable = calibrate(questions)
    assert only_answerable.returncode == 0, only_answerable.stderr
    out = only_answerable.stdout
    assert "calibration over 7 answerable, 0 unanswerable questions in" in out and "7 chunks" in out
    assert "No unanswerable questions, so no threshold is suggested" in out and "suggested: " not in out
    assert "wrongly abstains on 0% of them" in out

    with questions.open("a", encoding="utf-8") as f:
        f.writelines(f'{{"question": "{q}", "kind": "unanswerable"}}\n' for q in OFF_TOPIC)
    both = calibrate(questions)
    assert both.returncode == 0, both.stderr
    assert "calibration over 7 answerable, 3 unanswerable questions" in both.stdout
    assert "0.74    1.000    0.000 <- current" in both.stdout
    # Off-topic questions are silenced at every threshold, 0.50 too: they can't choose one.
    assert "no threshold is suggested: no allowed threshold abstains on more" in both.stdout
    assert "set ABSTAIN_THRESHOLD=" not in both.stdout
