"""What the app keeps in the user's own browser (gr.BrowserState), and the key it is sealed with."""

from __future__ import annotations

import secrets
from pathlib import Path

SECRET_FILE = "browser-state.key"


def browser_secret(data_dir: Path) -> str:
    """The key the browser's copies (a conversation, a reviewer's name) are encrypted with, made once and kept.

    Gradio draws a new one on every start by default, and a restart of the app
    would then lose every open conversation.
    """
    path = data_dir / SECRET_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(key, encoding="utf-8")
        return key
