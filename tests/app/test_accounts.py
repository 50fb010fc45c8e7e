"""Sign-in (ui/accounts.py, `python app.py users`): the accounts file, the command, and a real browser."""

from __future__ import annotations

import io
import json
import stat
import tempfile
from pathlib import Path

import pytest
from appkit import fake_llm
from test_browser import ARGS, CHROMIUM, app_answering, playwright, wait_listed

from ui.accounts import AccountError, Accounts


def test_accounts_keep_salted_hashes_and_check_names_and_passwords(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    assert not accounts.enabled and accounts.check("ana", "anything") is False  # no file: sign-in off
    assert accounts.add("ana", "correct horse") is True
    assert accounts.add("ben", "battery staple") is True
    assert accounts.enabled and accounts.names() == ["ana", "ben"]
    assert accounts.check("ana", "correct horse") and not accounts.check("ana", "battery staple")
    assert not accounts.check("nobody", "correct horse") and not accounts.check("", "")

    text = (tmp_path / "users.json").read_text()
    assert "correct horse" not in text and json.loads(text)["users"]["ana"]["salt"]
    assert stat.S_IMODE((tmp_path / "users.json").stat().st_mode) == 0o600  # its owner's only

    assert accounts.add("ana", "a new password") is False  # a new password, the same account
    assert accounts.check("ana", "a new password") and not accounts.check("ana", "correct horse")
    assert accounts.remove("ben") and not accounts.remove("ben") and accounts.names() == ["ana"]
    assert Accounts(tmp_path).check("ana", "a new password")  # another process reads the same file

    with pytest.raises(AccountError, match="at least 8"):
        accounts.add("cy", "short")
    with pytest.raises(AccountError, match="without spaces"):
        accounts.add("two words", "long enough")
    (tmp_path / "users.json").write_text("{not json")
    assert accounts.check("ana", "a new password") is False  # refused, not a server error
    with pytest.raises(AccountError, match="Fix or delete it"):
        accounts.names()


def test_the_users_command_adds_lists_and_removes_accounts(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from app import main

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["users", "add", "ana", "--password-stdin"]) == 0
    said = capsys.readouterr().out
    assert "Added ana." in said and "Sign-in is on from the app's next start" in said
    assert Accounts(tmp_path).check("ana", "correct horse")
    assert main(["users", "list"]) == 0 and capsys.readouterr().out.strip() == "ana"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "ben", "--password-stdin"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err and Accounts(tmp_path).names() == ["ana"]
    assert main(["users", "remove", "nobody"]) == 2 and "no account 'nobody'" in capsys.readouterr().err
    assert main(["users", "remove", "ana"]) == 0
    assert "open to all from its next start" in capsys.readouterr().out


def sign_in(page, url: str, name: str, password: str) -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_with_an_account_everyone_signs_in_and_their_conversations_follow_them(app_data, monkeypatch) -> None:  # noqa: ANN001
    from gradio_client import Client

    question = "Signed in: how do I start it without a browser tab?"
    Accounts(app_data).add("ana", "correct horse")
    try:
        with (
            app_answering(app_data, monkeypatch, fake_llm()) as (url, _),
            playwright.sync_playwright() as p,
            tempfile.TemporaryDirectory() as one,
            tempfile.TemporaryDirectory() as two,
        ):
            laptop = p.chromium.launch_persistent_context(
                one, executable_path=CHROMIUM, headless=True, args=ARGS
            )
            page = laptop.new_page()
            sign_in(page, url, "ana", "wrong password")
            page.get_by_text("Incorrect Credentials", exact=False).wait_for(timeout=30_000)
            assert page.get_by_label("Your question").count() == 0
            sign_in(page, url, "ana", "correct horse")
            page.get_by_label("Your question").fill(question)
            page.get_by_role("button", name="Ask", exact=True).click()
            page.get_by_text("so no tab opens", exact=False).first.wait_for(timeout=30_000)
            assert "Signed in as ana" in page.locator("#chat-header").inner_text()
            wait_listed(page, [question])
            page.get_by_role("tab", name="Review").click()
            name = page.get_by_label("Your name (shown with your verdicts)")
            page.wait_for_function(
                "() => document.querySelector('#reviewer-name textarea, #reviewer-name input')?.value === 'ana'"
            )
            assert name.is_disabled()

            # another browser, signed in as the same person: the same list
            phone = p.chromium.launch_persistent_context(
                two, executable_path=CHROMIUM, headless=True, args=ARGS
            )
            other = phone.new_page()
            sign_in(other, url, "ana", "correct horse")
            other.locator("#chatbot").get_by_text(question).wait_for(timeout=30_000)
            wait_listed(other, [question])
            laptop.close()
            phone.close()

            with pytest.raises(Exception):  # noqa: B017 - the API asks for the account too
                Client(url, verbose=False).predict("how do I start it?", [], api_name="/ask")
            _, history = Client(url, auth=("ana", "correct horse"), verbose=False).predict(
                "how do I start it?", [], api_name="/ask"
            )
            assert "so no tab opens" in str(history[-1])
    finally:
        (app_data / "users.json").unlink()
