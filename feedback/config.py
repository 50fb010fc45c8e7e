"""Feedback's reading of the app settings: is Label Studio configured, the webhook URL and secret,
and whether answers are being pre-rated."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from feedback.records import PreRatingAgreement
from settings import Settings

WEBHOOK_PATH = "/webhooks/label-studio"
SECRET_FILE = "webhook_secret"
LOCAL_CREDENTIALS = Path("labelstudio") / "credentials"  # under DATA_DIR, written by scripts/labelstudio.sh
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def is_local_label_studio(url: str, port: int) -> bool:
    """Does `url` point at the Label Studio scripts/labelstudio.sh runs (this host, LABEL_STUDIO_PORT)?"""
    try:
        parts = urlsplit(url.strip())
        url_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a malformed port
        return False
    return parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS and url_port == port


def with_local_label_studio(settings: Settings) -> Settings:
    """`settings`, pointed at the local Label Studio of `make run` when LABEL_STUDIO_URL is empty.

    scripts/labelstudio.sh runs it on 127.0.0.1:LABEL_STUDIO_PORT with its data under
    DATA_DIR and saves the admin's token there on its first start; `make run` hands
    both to the app. `python -m feedback` and a bare `python app.py` find it the same
    way, instead of saying "not configured" beside a running Label Studio. Without
    that file (no local Label Studio was ever started) nothing changes.

    LABEL_STUDIO_URL set to that same local server (http://127.0.0.1:8080) without
    LABEL_STUDIO_API_KEY gets the saved token too; any other URL needs its own key
    (the local admin's token is never sent elsewhere).
    """
    url = settings.label_studio_url.strip()
    if url and (
        settings.label_studio_api_key.strip() or not is_local_label_studio(url, settings.label_studio_port)
    ):
        return settings
    try:
        lines = (Path(settings.data_dir) / LOCAL_CREDENTIALS).read_text().splitlines()
    except OSError:
        return settings
    saved = dict(line.split("=", 1) for line in lines if "=" in line)
    token = settings.label_studio_api_key.strip() or saved.get("LABEL_STUDIO_USER_TOKEN", "").strip()
    if not token:
        return settings
    return settings.model_copy(
        update={
            "label_studio_url": url or f"http://127.0.0.1:{settings.label_studio_port}",
            "label_studio_api_key": token,
        }
    )


def label_studio_configured(settings: Settings) -> bool:
    """Both URL and key set: otherwise feedback stays local (and says so)."""
    return not missing_settings(settings)


def missing_settings(settings: Settings) -> list[str]:
    """The Label Studio settings still unset, to name exactly what to set."""
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


def pre_rating_off(settings: Settings) -> str:
    """Why answers get no pre-rating under `settings`, with what to set; "" when they get one.

    The rule is `Settings.pre_rates`, as the app applies it. Without this, a report of an
    app that never pre-rates by design said "No answer is pre-rated yet", as if pre-ratings
    were on their way.
    """
    if settings.pre_rates:
        return ""
    if settings.pre_rate == "off":
        return "PRE_RATE=off; set PRE_RATE=auto or on to have a model pre-rate answers"
    model = "the local model (LOCAL_LLM_MODEL)" if settings.local_llm_model else "the bundled local model"
    return f"PRE_RATE=auto does not pre-rate with {model}; set PRE_RATE=on to use it"


def pre_rating_summary(agreement: PreRatingAgreement, settings: Settings) -> str:
    """`agreement.summary`, saying so when pre-rating is off rather than that none came yet.

    For the report and the Review tab: earlier pre-ratings (made while it was on) are
    still compared with reviewers, and the reader learns why no new ones come.
    """
    off = pre_rating_off(settings)
    if not off:
        return agreement.summary
    if not agreement.pre_rated:
        return f"Pre-rating is off ({off})."
    return f"{agreement.summary} Pre-rating is off now ({off})."
