"""TOTP second factor: enrolment shown once, codes, replay, lockout, and a lost second factor."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest

from tests.fixtures.server import ServerProcess
from tests.fixtures.smtp import SmtpServer
from tests.server.api.accounts_support import (
    body_of,
    create_user,
    login,
    reset_token,
    start_backend,
)
from tests.server.conftest import HTTP, auth

CODE_NEEDED = {"msg": "Please include your two-factor authentication code"}
MAX_FAILED = 3


@dataclass
class TwoFactorServer:
    """A server that requires 2FA, with root already enrolled."""

    proc: ServerProcess
    root_token: str

    @property
    def url(self) -> str:
        """The API base."""
        return self.proc.url


def _enrol(url: str, username: str, password: str) -> pyotp.TOTP:
    """Log in once (the enrolment answer) and complete it with a valid code."""
    first = login(url, username, password)
    assert first.status_code == 200 and set(first.json()) == {"qr_uri", "otp_secret", "msg"}
    totp = pyotp.TOTP(first.json()["otp_secret"])
    assert login(url, username, password, totp.now()).status_code == 200
    return totp


def _next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30 s step (accepted: the server allows one step of drift)."""
    return totp.at(time.time() + 30)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def tfa(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        postgres_databases: Callable[[], str],
        smtp_server: SmtpServer) -> Iterator[TwoFactorServer]:
    """A 2FA server (lock after 3 failures) that mails to the local SMTP server."""
    proc = start_backend(request.param, tmp_path_factory, postgres_databases, {
        **smtp_server.env(), "V6FLOW_SERVER_TWO_FACTOR_AUTH": "true",
        "V6FLOW_SERVER_MAX_FAILED_ATTEMPTS": str(MAX_FAILED),
        "V6FLOW_SERVER_BETWEEN_USER_EMAILS_MINUTES": "0"})
    totp = _enrol(proc.url, "root", proc.root_password)
    token = login(proc.url, "root", proc.root_password, _next_code(totp)).json()["access_token"]
    yield TwoFactorServer(proc, token)
    proc.stop()


def _user(tfa: TwoFactorServer) -> tuple[str, str, int]:
    return create_user(tfa.url, tfa.root_token)


def test_enrolment_is_shown_once(tfa: TwoFactorServer) -> None:
    """The first right password gets qr_uri/otp_secret/msg; the next one only asks for a code."""
    username, password, _ = _user(tfa)
    first = login(tfa.url, username, password)
    assert first.status_code == 200 and set(first.json()) == {"qr_uri", "otp_secret", "msg"}
    secret = first.json()["otp_secret"]
    assert first.json()["qr_uri"] == pyotp.TOTP(secret).provisioning_uri(
        name=username, issuer_name="v6flow")
    second = login(tfa.url, username, password)
    assert (second.status_code, second.json()) == (200, CODE_NEEDED)


def test_first_valid_code_completes_enrolment(tfa: TwoFactorServer) -> None:
    """The enrolment's secret gives codes that log in; without a code the answer asks for one."""
    username, password, _ = _user(tfa)
    totp = _enrol(tfa.url, username, password)
    assert login(tfa.url, username, password).json() == CODE_NEEDED
    assert "access_token" in login(tfa.url, username, password, _next_code(totp)).json()


def test_wrong_code_is_401(tfa: TwoFactorServer) -> None:
    """A code that is not the current one is refused."""
    username, password, _ = _user(tfa)
    totp = _enrol(tfa.url, username, password)
    wrong = f"{(int(_next_code(totp)) + 1) % 10**6:06d}"
    response = login(tfa.url, username, password, wrong)
    assert response.status_code == 401
    assert response.json() == {"msg": "Your two-factor authentication code is incorrect"}


def test_code_cannot_be_replayed(tfa: TwoFactorServer) -> None:
    """A code that logged in once is refused the second time, even within its window."""
    username, password, _ = _user(tfa)
    totp = _enrol(tfa.url, username, password)
    code = _next_code(totp)
    assert login(tfa.url, username, password, code).status_code == 200
    assert login(tfa.url, username, password, code).status_code == 401


def test_code_as_a_number_is_accepted(tfa: TwoFactorServer) -> None:
    """v4's client may send the code as an int; leading zeros are restored."""
    username, password, _ = _user(tfa)
    totp = _enrol(tfa.url, username, password)
    code = _next_code(totp)
    assert login(tfa.url, username, password, int(code)).status_code == 200


def test_password_checked_before_the_code(tfa: TwoFactorServer) -> None:
    """A wrong password with a right code is the plain login failure."""
    username, password, _ = _user(tfa)
    totp = _enrol(tfa.url, username, password)
    response = login(tfa.url, username, "wrong-password", _next_code(totp))
    assert (response.status_code, response.json()) == (401, {"msg": "Failed to login"})


def test_failed_codes_count_towards_the_lockout(tfa: TwoFactorServer) -> None:
    """N wrong codes lock the account: then the right password and code fail too."""
    username, password, _ = _user(tfa)
    totp = _enrol(tfa.url, username, password)
    for _ in range(MAX_FAILED):
        assert login(tfa.url, username, password, "000000").status_code == 401
    response = login(tfa.url, username, password, _next_code(totp))
    assert (response.status_code, response.json()) == (401, {"msg": "Failed to login"})


def test_secret_never_in_user_json_or_log(tfa: TwoFactorServer) -> None:
    """The secret appears in no user answer and nowhere in the server's log."""
    username, password, user_id = _user(tfa)
    secret = login(tfa.url, username, password).json()["otp_secret"]
    one = HTTP.get(f"{tfa.url}/user/{user_id}", headers=auth(tfa.root_token), timeout=10)
    many = HTTP.get(f"{tfa.url}/user", params={"per_page": 100},
                    headers=auth(tfa.root_token), timeout=10)
    assert one.status_code == many.status_code == 200
    assert secret not in one.text and secret not in many.text and "otp" not in one.text
    assert secret not in tfa.proc.log_text()


def _lost(tfa: TwoFactorServer, password: str, **name: Any) -> tuple[int, dict[str, str]]:
    response = HTTP.post(f"{tfa.url}/recover/2fa/lost",
                         json={"username": None, "email": None, "password": password, **name},
                         timeout=10)
    return response.status_code, response.json()


def _reset(tfa: TwoFactorServer, token: str) -> tuple[int, dict[str, str]]:
    response = HTTP.post(f"{tfa.url}/recover/2fa/reset", json={"reset_token": token}, timeout=10)
    return response.status_code, response.json()


def test_lost_second_factor_gives_a_fresh_enrolment(tfa: TwoFactorServer,
                                                    smtp_server: SmtpServer) -> None:
    """Password + mailed token give a new secret once; its codes log in, the old ones do not."""
    username, password, _ = _user(tfa)
    old = _enrol(tfa.url, username, password)
    assert _lost(tfa, password, username=username) == (200, {
        "msg": "You should have received an email that will allow you to reset your 2FA."})
    token = reset_token(body_of(smtp_server.wait_for(f"{username}@example.org")[-1]))
    status, enrolment = _reset(tfa, token)
    assert status == 200 and set(enrolment) == {"qr_uri", "otp_secret", "msg"}
    assert enrolment["otp_secret"] != old.secret
    new = pyotp.TOTP(enrolment["otp_secret"])
    assert login(tfa.url, username, password, _next_code(old)).status_code == 401
    assert login(tfa.url, username, password).json() == CODE_NEEDED  # not shown again
    assert login(tfa.url, username, password, new.now()).status_code == 200
    assert _reset(tfa, token) == (400, {"msg": "The reset token has already been used"})


def test_lost_second_factor_by_email_address(tfa: TwoFactorServer,
                                             smtp_server: SmtpServer) -> None:
    """The account may be named by its e-mail address."""
    username, password, _ = _user(tfa)
    _enrol(tfa.url, username, password)
    assert _lost(tfa, password, email=f"{username}@example.org")[0] == 200
    smtp_server.wait_for(f"{username}@example.org")


def test_lost_second_factor_needs_the_password(tfa: TwoFactorServer,
                                               smtp_server: SmtpServer) -> None:
    """A wrong password is the login failure (401) and mails nothing."""
    username, _, _ = _user(tfa)
    other, other_password, _ = _user(tfa)
    assert _lost(tfa, "wrong-password", username=username) == (401, {"msg": "Failed to login"})
    assert _lost(tfa, other_password, username=other)[0] == 200
    smtp_server.wait_for(f"{other}@example.org")
    time.sleep(0.5)
    assert smtp_server.mailbox.to(f"{username}@example.org") == []


def test_password_token_does_not_reset_the_second_factor(tfa: TwoFactorServer,
                                                         smtp_server: SmtpServer) -> None:
    """A token mailed for a password reset is not valid at /recover/2fa/reset."""
    username, _, _ = _user(tfa)
    HTTP.post(f"{tfa.url}/recover/lost", json={"username": username}, timeout=10)
    token = reset_token(body_of(smtp_server.wait_for(f"{username}@example.org")[-1]))
    assert _reset(tfa, token) == (400, {"msg": "The reset token is not valid"})
