"""Which language a question is written in, when it is clearly not English.

The docs are in English, and so is the local embedder: a question in Spanish
finds nothing and abstains on a word it can't place ("the docs never mention
'anotaciones'"), which tells its asker nothing useful. Knowing the language
lets the reply say to ask in English instead.

py3langid (langid.py's model, 4.5 MB, no download) is restricted to the
`LANGUAGES` below and trusted from `MIN_PROBABILITY`: on the 866 English
questions of the eval sets, the rewordings and bench/short_questions.txt (many
of them two or three words: "webhooks?", "COCO export") no other language gets
more than 0.30 ("is label studio enterprise ISO 27001 certified?": Spanish).
Of 27 short questions in eleven other languages ("Wie exportiere ich?",
"cómo exporto datos", "где ключ API?") it names 26 at 0.5 and 21 at 0.8,
where it was set at first. Only an abstaining question is checked, so a
misreading could only add a sentence to a reply that already says the docs
don't cover it.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

# ISO 639-1 code -> the language's English name, for the reply.
LANGUAGES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "uk": "Ukrainian", "pl": "Polish",
    "cs": "Czech", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish",
    "hu": "Hungarian", "ro": "Romanian", "el": "Greek", "tr": "Turkish", "ar": "Arabic",
    "he": "Hebrew", "hi": "Hindi", "zh": "Chinese", "ja": "Japanese", "ko": "Korean",
    "vi": "Vietnamese", "id": "Indonesian", "th": "Thai",
}  # fmt: skip
MIN_PROBABILITY = 0.5

_identifier = None
_lock = threading.Lock()


def _load():  # noqa: ANN202 - py3langid's LanguageIdentifier, or None when it can't be loaded
    global _identifier
    with _lock:
        if _identifier is None:
            try:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(LANGUAGES))
                _identifier = identifier
            except Exception as exc:  # noqa: BLE001 - without it, replies only lose the hint
                log.warning("no language identifier (%s): replies won't suggest asking in English", exc)
                _identifier = False
    return _identifier or None


def foreign_language(text: str) -> str:
    """The English name of the language `text` is written in if that is surely not English, else ""."""
    identifier = _load()
    if identifier is None or not text.strip():
        return ""
    code, probability = identifier.classify(text)
    if code == "en" or probability < MIN_PROBABILITY:
        return ""
    return LANGUAGES.get(code, "")
