"""The unmodified vantage6 4.15.2 UserClient's account calls against ``v6flow server``.

Password change, recovery by mail, TOTP enrolment and login with a code, and a second-factor
reset by mail, each driven by the real client in its own venv (CONTRACT §3.1).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.fixtures.reference import ReferencePython
from tests.fixtures.server import ServerProcess, start_server
from tests.fixtures.smtp import SmtpServer
from tests.server.api.accounts_support import (
    body_of,
    create_user,
    login,
    reset_token,
    root_token,
)

SCRIPT = (Path(__file__).with_name("reference_accounts.py")).read_text()


@dataclass
class Server:
    """A server with its root token."""

    proc: ServerProcess
    root_token: str

    def run(self, reference: ReferencePython, command: str, *args: str) -> dict[str, Any]:
        """Run one command of the reference script against this server."""
        out: dict[str, Any] = reference.run_json(SCRIPT, command, "127.0.0.1",
                                                 str(self.proc.port), *args)
        return out


def _start(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> ServerProcess:
    directory = tmp_path_factory.mktemp("accounts-e2e")
    return start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env=env)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory,
          smtp_server: SmtpServer) -> Iterator[Server]:
    """A server that mails to the local SMTP server."""
    proc = _start(tmp_path_factory, {**smtp_server.env(),
                                     "V6FLOW_SERVER_BETWEEN_USER_EMAILS_MINUTES": "0"})
    yield Server(proc, root_token(proc))
    proc.stop()


@pytest.fixture(scope="module")
def two_factor(tmp_path_factory: pytest.TempPathFactory,
               smtp_server: SmtpServer) -> Iterator[Server]:
    """A server that requires 2FA (root enrolled) and mails to the local SMTP server."""
    proc = _start(tmp_path_factory, {
        **smtp_server.env(), "V6FLOW_SERVER_TWO_FACTOR_AUTH": "true",
        "V6FLOW_SERVER_BETWEEN_USER_EMAILS_MINUTES": "0"})
    secret = login(proc.url, "root", proc.root_password).json()["otp_secret"]
    yield Server(proc, root_token(proc, secret))
    proc.stop()


def _new_password() -> str:
    return f"pw-{secrets.token_urlsafe(10)}"


def test_change_my_password(plain: Server, reference_client: ReferencePython) -> None:
    """util.change_my_password changes it; the client then logs in with the new one."""
    username, password, _ = create_user(plain.proc.url, plain.root_token)
    new = _new_password()
    out = plain.run(reference_client, "change", username, password, new)
    assert out["result"] == {"msg": "The password has been changed successfully!"}
    assert plain.run(reference_client, "login", username, new) == {
        "authenticated": True, "printed_secret": None}
    assert plain.run(reference_client, "login", username, password)["error"][0] == (
        "AuthenticationException")


@pytest.mark.parametrize("kind", ["username", "email"])
def test_reset_and_set_my_password(plain: Server, reference_client: ReferencePython,
                                   smtp_server: SmtpServer, kind: str) -> None:
    """util.reset_my_password mails a token; util.set_my_password sets the new password."""
    username, _, _ = create_user(plain.proc.url, plain.root_token)
    address = f"{username}@example.org"
    asked = plain.run(reference_client, "lost", kind, username if kind == "username" else address)
    assert asked["result"] == {
        "msg": "If the username or email is in our database you will soon receive an email."}
    token = reset_token(body_of(smtp_server.wait_for(address)[-1]))
    new = _new_password()
    assert plain.run(reference_client, "set", token, new)["result"] == {
        "msg": "The password has successfully been reset!"}
    assert plain.run(reference_client, "login", username, new)["authenticated"] is True


def test_two_factor_enrolment_and_login(two_factor: Server,
                                        reference_client: ReferencePython) -> None:
    """authenticate shows the QR once, asks for the code, and logs in with a valid one."""
    username, password, _ = create_user(two_factor.proc.url, two_factor.root_token)
    first = two_factor.run(reference_client, "login", username, password)
    assert first["authenticated"] is False and first["printed_secret"]
    totp = pyotp.TOTP(first["printed_secret"])
    no_code = two_factor.run(reference_client, "login", username, password)
    assert no_code == {"error": ["Exception", "Please include your two-factor authentication "
                                              "code"], "printed_secret": None}
    assert two_factor.run(reference_client, "login", username, password, totp.now()) == {
        "authenticated": True, "printed_secret": None}
    wrong = f"{(int(totp.at(time.time() + 30)) + 1) % 10**6:06d}"
    assert two_factor.run(reference_client, "login", username, password, wrong)["error"][0] == (
        "AuthenticationException")


def test_reset_and_set_two_factor_auth(two_factor: Server, reference_client: ReferencePython,
                                       smtp_server: SmtpServer) -> None:
    """util.reset_two_factor_auth mails a token; util.set_two_factor_auth gives a new secret."""
    username, password, _ = create_user(two_factor.proc.url, two_factor.root_token)
    old = two_factor.run(reference_client, "login", username, password)["printed_secret"]
    asked = two_factor.run(reference_client, "lost2fa", username, password)
    assert asked["result"] == {
        "msg": "You should have received an email that will allow you to reset your 2FA."}
    token = reset_token(body_of(smtp_server.wait_for(f"{username}@example.org")[-1]))
    reset = two_factor.run(reference_client, "set2fa", token)
    assert set(reset["result"]) == {"qr_uri", "otp_secret", "msg"}
    new = reset["printed_secret"]
    assert new == reset["result"]["otp_secret"] and new != old
    assert two_factor.run(reference_client, "login", username, password,
                          pyotp.TOTP(new).now())["authenticated"] is True
