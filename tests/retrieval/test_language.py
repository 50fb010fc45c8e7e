"""Which language a question is in: short questions in other languages are named, English ones never."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.language import foreign_language

SHORT_QUESTIONS = Path(__file__).resolve().parents[2] / "bench" / "short_questions.txt"


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("Wie exportiere ich?", "German"),
        ("wie exportieren", "German"),
        ("cómo exporto datos", "Spanish"),
        ("puedo etiquetar audio?", "Spanish"),
        ("где ключ API?", "Russian"),
        ("comment exporter les annotations ?", "French"),
        ("APIキーはどこですか？", "Japanese"),
    ],
)
def test_a_short_question_in_another_language_is_named(question: str, language: str) -> None:
    assert foreign_language(question) == language


def test_short_english_questions_are_not_taken_for_another_language() -> None:
    questions = [  # "A What is the Labels tag?": answered (A) or not (U), then the question
        line.strip()[2:]
        for line in SHORT_QUESTIONS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    questions += ["is label studio enterprise ISO 27001 certified?", "pizza", "webhooks?", "COCO export"]
    assert len(questions) > 70
    assert {q: foreign_language(q) for q in questions if foreign_language(q)} == {}
