"""Feedback's reading of the app settings: is Label Studio configured, the webhook URL and secret."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from settings import Settings

WEBHOOK_PATH = "/webhooks/label-studio"
SECRET_FILE = "webhook_secret"


def label_studio_configured(settings: Settings) -> bool:
    """Both URL and key set: otherwise feedback stays local (and says so)."""
    return bool(settings.label_studio_url.strip() and settings.label_studio_api_key.strip())


def missing_settings(settings: Settings) -> list[str]:
    return [
        name
        for name, value in (
            ("LABEL_STUDIO_URL", settings.label_studio_url),
            ("LABEL_STUDIO_API_KEY", settings.label_studio_api_key),
        )
        if not value.strip()
    ]


def webhook_url(settings: Settings) -> str:
    return settings.app_url.rstrip("/") + WEBHOOK_PATH


def webhook_secret(settings: Settings) -> str:
    """WEBHOOK_SECRET, or one generated once and kept in DATA_DIR (mode 0600).

    The app registers the webhook with this secret and checks it on every call,
    both in the same process, so a generated secret just works; set
    WEBHOOK_SECRET when the app runs several processes or Label Studio's
    webhook is managed by hand.
    """
    if settings.webhook_secret:
        return settings.webhook_secret
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    try:
        os.link(tmp, path)  # atomic and exclusive: the file appears whole or not at all
    except FileExistsError:  # another thread or process made it first: use theirs
        value = path.read_text().strip()
    finally:
        tmp.unlink()
    return value
