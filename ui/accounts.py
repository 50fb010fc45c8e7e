"""Who may use the app: optional sign-in, with the accounts in `DATA_DIR/users.json`.

With no account the app is open to whoever reaches it (the default, for one person on
their own machine). Once `python app.py users add NAME` has made one, the app started
after it asks everyone to sign in: the chat, the Review tab and the API. A signed-in
person's conversations follow them from browser to browser, and their name is the one
their verdicts in the Review tab are given under.

Passwords are kept as salted scrypt hashes (the standard library's), never as typed;
the file is readable by its owner only. A change (a password, an account removed) is
read on the next sign-in, without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USERS_FILE = "users.json"
MIN_PASSWORD = 8
MAX_NAME = 64
# scrypt's cost: ~40 ms and 16 MiB per sign-in here (OWASP's minimum is N=2^17 with r=8, p=1 at
# 128 MiB; this keeps a sign-in on a small server quick while still far from a plain hash).
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AccountError(ValueError):
    """A name or password the accounts file can't take, said so a person can fix it."""


def signed_in(request: object) -> str:
    """The account a request (gr.Request) was made under; "" when the app asks no one to sign in."""
    return getattr(request, "username", None) or ""


def user_key(name: str) -> str:
    """What a signed-in person's conversations are filed under (as a browser's are under its id)."""
    return "user-" + hashlib.sha256(name.encode()).hexdigest()[:40]


def _hash(password: str, salt: bytes, cost: dict[str, int]) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 1024 * 1024, dklen=32, **cost)


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or any(c.isspace() or c == ":" for c in name):
        raise AccountError(
            f"An account name is 1-{MAX_NAME} characters, without spaces or ':' (got {name!r})."
        )
    return name


class Accounts:
    """The accounts file at `data_dir/users.json` (none: sign-in is off)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / USERS_FILE
        self._lock = threading.Lock()
        self._read: tuple[float, dict[str, Any]] | None = None  # (mtime, accounts) last read

    def _accounts(self) -> dict[str, Any]:
        """The file's accounts, read again only when it changed."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._read is None or self._read[0] != mtime:
                try:
                    users = json.loads(self.path.read_text(encoding="utf-8")).get("users", {})
                except (OSError, ValueError, AttributeError) as exc:
                    raise AccountError(
                        f"{self.path} can't be read ({exc}). Fix or delete it, then add the accounts again "
                        "(python app.py users add NAME)."
                    ) from exc
                self._read = (mtime, users if isinstance(users, dict) else {})
            return self._read[1]

    def names(self) -> list[str]:
        return sorted(self._accounts())

    @property
    def enabled(self) -> bool:
        """Whether the app asks for a sign-in (at least one account)."""
        return bool(self._accounts())

    def check(self, name: str, password: str) -> bool:
        """Gradio's sign-in check: right name and password (a wrong name costs as long as a wrong password)."""
        try:
            entry = self._accounts().get((name or "").strip())
        except AccountError:
            log.exception("sign-in refused: the accounts file can't be read")
            return False
        stored = entry if isinstance(entry, dict) else {}
        try:
            salt = base64.b64decode(stored.get("salt", ""))
            expected = base64.b64decode(stored.get("hash", ""))
            cost = {k: int(stored.get(k, SCRYPT[k])) for k in SCRYPT}
        except (ValueError, TypeError):
            return False
        got = _hash(password or "", salt or b"no such account", cost)
        return bool(expected) and hmac.compare_digest(got, expected)

    def add(self, name: str, password: str) -> bool:
        """Make an account, or give an existing one a new password; True when it is new."""
        name = check_name(name)
        if len(password or "") < MIN_PASSWORD:
            raise AccountError(f"A password has at least {MIN_PASSWORD} characters.")
        salt = secrets.token_bytes(16)
        users = dict(self._accounts())
        new = name not in users
        users[name] = {
            "salt": base64.b64encode(salt).decode(),
            "hash": base64.b64encode(_hash(password, salt, SCRYPT)).decode(),
            **SCRYPT,
        }
        self._write(users)
        return new

    def remove(self, name: str) -> bool:
        """Delete an account; False if there was none by that name."""
        users = dict(self._accounts())
        if users.pop((name or "").strip(), None) is None:
            return False
        self._write(users)
        return True

    def _write(self, users: dict[str, Any]) -> None:
        """Replace the file at once (a crash leaves the old one), readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"users": users}, out, indent=1)
        os.replace(tmp, self.path)
        with self._lock:
            self._read = None
