"""Feedback's reading of the app settings: is Label Studio configured, where its API key came
from, the webhook URL and secret, and whether answers are being pre-rated."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values

from feedback.records import PreRatingAgreement
from settings import ENV_FILES, Settings

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
    saved = _saved_token(settings)
    if saved is None:
        return settings
    token = settings.label_studio_api_key.strip() or saved
    if not token:
        return settings
    return settings.model_copy(
        update={
            "label_studio_url": url or f"http://127.0.0.1:{settings.label_studio_port}",
            "label_studio_api_key": token,
        }
    )


def _saved_token(settings: Settings) -> str | None:
    """The admin token scripts/labelstudio.sh saved under DATA_DIR (None: no such file)."""
    try:
        lines = (Path(settings.data_dir) / LOCAL_CREDENTIALS).read_text().splitlines()
    except OSError:
        return None
    saved = dict(line.split("=", 1) for line in lines if "=" in line)
    return saved.get("LABEL_STUDIO_USER_TOKEN", "").strip()


@dataclass(frozen=True)
class KeyOrigin:
    """Where the Label Studio API key in use came from, so that an error about it says what to change.

    A rotated token is the usual cause of a 401, and "check LABEL_STUDIO_API_KEY" sent
    people to a .env that had none: `make run` hands the app the token scripts/labelstudio.sh
    saved in DATA_DIR/labelstudio/credentials.
    """

    kind: Literal["environment", ".env", "credentials", "unknown"] = "unknown"
    path: str = ""  # the credentials file, for kind "credentials"

    @property
    def setting(self) -> str:
        """Where to put a new key: LABEL_STUDIO_API_KEY, and where it is read from."""
        if self.kind == "environment":
            return "LABEL_STUDIO_API_KEY in the environment (it wins over .env)"
        if self.kind in (".env", "credentials"):
            return "LABEL_STUDIO_API_KEY in .env"
        return "LABEL_STUDIO_API_KEY"

    @property
    def fix(self) -> str:
        """What to do when Label Studio refuses the key."""
        if self.kind == "credentials":
            return (
                f"the key in use is the admin token scripts/labelstudio.sh saved in {self.path} for the "
                "Label Studio `make run` starts, and Label Studio no longer accepts it (was it reset there?): "
                "put a current token (Label Studio: Account & Settings) in .env as LABEL_STUDIO_API_KEY"
            )
        if self.kind == "environment":
            return "check LABEL_STUDIO_API_KEY, set in the environment (it wins over .env)"
        if self.kind == ".env":
            return "check LABEL_STUDIO_API_KEY in .env"
        return "check LABEL_STUDIO_API_KEY"


def key_origin(settings: Settings) -> KeyOrigin:
    """Where `settings`' Label Studio API key came from (`with_local_label_studio` applied or not).

    The credentials file when it is the token saved there, whether `with_local_label_studio`
    read it or `make run` exported it (scripts/run.sh); else the environment, else the
    .env files `Settings` reads (the working directory's, else the project's); "unknown" for a key
    set in code.
    """
    key = settings.label_studio_api_key.strip()
    if not key:
        return KeyOrigin()
    if key == _saved_token(settings):
        return KeyOrigin("credentials", str(Path(settings.data_dir) / LOCAL_CREDENTIALS))
    if os.environ.get("LABEL_STUDIO_API_KEY", "").strip() == key:
        return KeyOrigin("environment")
    for path in reversed(ENV_FILES):  # the file that wins first, as Settings reads them
        try:
            values = {k.upper(): v for k, v in dotenv_values(path).items()}
        except (OSError, UnicodeDecodeError):
            continue
        if "LABEL_STUDIO_API_KEY" in values:
            return KeyOrigin(".env") if (values["LABEL_STUDIO_API_KEY"] or "").strip() == key else KeyOrigin()
    return KeyOrigin()


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
