"""Password recovery by mail: ``POST /recover/lost`` and ``POST /recover/reset``."""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.fixtures.server import ServerProcess, free_port
from tests.fixtures.smtp import Mailbox, SmtpServer
from tests.server.api.accounts_support import (
    body_of,
    create_user,
    login,
    reset_token,
    root_token,
    sql,
    start_backend,
)
from tests.server.conftest import HTTP, auth, unique
from v6flow_server.mail import Mail, MailError, SmtpMailer
from v6flow_server.settings import SmtpSettings

ANSWER = {"msg": "If the username or email is in our database you will soon receive an email."}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mail_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                postgres_databases: Callable[[], str],
                smtp_server: SmtpServer) -> Iterator[ServerProcess]:
    """A server that mails to the local SMTP server, without a pause between mails."""
    proc = start_backend(request.param, tmp_path_factory, postgres_databases, {
        **smtp_server.env(), "V6FLOW_SERVER_BETWEEN_USER_EMAILS_MINUTES": "0",
        "V6FLOW_SERVER_MAX_FAILED_ATTEMPTS": "3"})
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory, postgres_databases: Callable[[], str],
                smtp_server: SmtpServer) -> Iterator[ServerProcess]:
    """A server whose reset tokens expire after 1.2 s (and that mails at most every 5 min)."""
    proc = start_backend("sqlite", tmp_path_factory, postgres_databases, {
        **smtp_server.env(), "V6FLOW_SERVER_EMAIL_TOKEN_VALIDITY_MINUTES": "0.02"})
    yield proc
    proc.stop()


def _ask(proc: ServerProcess, **body: str) -> tuple[int, object]:
    response = HTTP.post(f"{proc.url}/recover/lost", json=body, timeout=10)
    return response.status_code, response.json()


def _reset(proc: ServerProcess, token: str, password: str) -> tuple[int, dict[str, str]]:
    response = HTTP.post(f"{proc.url}/recover/reset",
                         json={"reset_token": token, "password": password}, timeout=10)
    return response.status_code, response.json()


def _mailed_token(proc: ServerProcess, smtp_server: SmtpServer, address: str,
                  count: int = 1) -> str:
    return reset_token(body_of(smtp_server.wait_for(address, count)[-1]))


def test_mailed_token_sets_a_new_password(mail_server: ServerProcess,
                                          smtp_server: SmtpServer) -> None:
    """A token mailed for a username resets the password; only the new one logs in."""
    username, old, _ = create_user(mail_server.url, root_token(mail_server))
    assert _ask(mail_server, username=username) == (200, ANSWER)
    token = _mailed_token(mail_server, smtp_server, f"{username}@example.org")
    new = f"new-{time.time_ns()}"
    assert _reset(mail_server, token, new) == (
        200, {"msg": "The password has successfully been reset!"})
    assert login(mail_server.url, username, new).status_code == 200
    assert login(mail_server.url, username, old).status_code == 401


def test_recovery_by_email_address(mail_server: ServerProcess, smtp_server: SmtpServer) -> None:
    """Asking by e-mail address mails the token to that address."""
    username, _, _ = create_user(mail_server.url, root_token(mail_server))
    address = f"{username}@example.org"
    assert _ask(mail_server, email=address) == (200, ANSWER)
    mail = smtp_server.wait_for(address)[0]
    assert username in body_of(mail) and mail["From"] == "v6flow test <v6flow@example.org>"


def test_unknown_account_answers_like_a_known_one_and_mails_nothing(
        mail_server: ServerProcess, smtp_server: SmtpServer) -> None:
    """Same status and body for an unknown username/e-mail; no mail goes out for it."""
    known, _, _ = create_user(mail_server.url, root_token(mail_server))
    ghost = unique("ghost")
    unknown_answers = [_ask(mail_server, username=ghost),
                       _ask(mail_server, email=f"{ghost}@example.org")]
    known_answer = _ask(mail_server, username=known)
    assert unknown_answers == [known_answer, known_answer] == [(200, ANSWER)] * 2
    smtp_server.wait_for(f"{known}@example.org")  # processed after the unknown ones
    time.sleep(0.5)
    assert smtp_server.mailbox.to(f"{ghost}@example.org") == []


def test_answer_time_does_not_depend_on_the_account(mail_server: ServerProcess,
                                                    smtp_server: SmtpServer) -> None:
    """Median answer times for known and unknown accounts differ by less than 25 ms."""
    users = [create_user(mail_server.url, root_token(mail_server))[0] for _ in range(7)]
    known: list[float] = []
    unknown: list[float] = []
    for username in users:
        for bucket, name in ((known, username), (unknown, unique("ghost"))):
            start = time.perf_counter()
            assert _ask(mail_server, username=name)[0] == 200
            bucket.append(time.perf_counter() - start)
    assert abs(statistics.median(known) - statistics.median(unknown)) < 0.025, (known, unknown)
    for username in users:
        smtp_server.wait_for(f"{username}@example.org")


def test_token_works_once(mail_server: ServerProcess, smtp_server: SmtpServer) -> None:
    """A used token is refused with 400 naming the reason."""
    username, _, _ = create_user(mail_server.url, root_token(mail_server))
    _ask(mail_server, username=username)
    token = _mailed_token(mail_server, smtp_server, f"{username}@example.org")
    assert _reset(mail_server, token, f"first-{time.time_ns()}")[0] == 200
    assert _reset(mail_server, token, f"second-{time.time_ns()}") == (
        400, {"msg": "The reset token has already been used"})


def test_a_new_token_spends_none_but_a_reset_spends_all(mail_server: ServerProcess,
                                                        smtp_server: SmtpServer) -> None:
    """Two mailed tokens: after the second resets the password, the first is used up too."""
    username, _, _ = create_user(mail_server.url, root_token(mail_server))
    address = f"{username}@example.org"
    _ask(mail_server, username=username)
    first = _mailed_token(mail_server, smtp_server, address)
    _ask(mail_server, username=username)
    second = _mailed_token(mail_server, smtp_server, address, count=2)
    assert first != second
    assert _reset(mail_server, second, f"pw-{time.time_ns()}")[0] == 200
    assert _reset(mail_server, first, f"pw-{time.time_ns()}")[1]["msg"] == (
        "The reset token has already been used")


def test_wrong_token_is_400(mail_server: ServerProcess) -> None:
    """A token the server never issued is refused with 400."""
    assert _reset(mail_server, "not-a-token-we-issued", "a-fine-new-password") == (
        400, {"msg": "The reset token is not valid"})


def test_expired_token_is_400(short_lived: ServerProcess, smtp_server: SmtpServer) -> None:
    """After its validity a token is refused with 400 saying it expired."""
    username, password, _ = create_user(short_lived.url, root_token(short_lived))
    _ask(short_lived, username=username)
    token = _mailed_token(short_lived, smtp_server, f"{username}@example.org")
    time.sleep(1.5)
    assert _reset(short_lived, token, f"late-{time.time_ns()}") == (
        400, {"msg": "The reset token has expired; ask for a new one"})
    assert login(short_lived.url, username, password).status_code == 200


def test_one_mail_per_user_within_the_interval(short_lived: ServerProcess,
                                               smtp_server: SmtpServer) -> None:
    """A second request within between_user_emails_minutes sends no second mail."""
    username, _, _ = create_user(short_lived.url, root_token(short_lived))
    other, _, _ = create_user(short_lived.url, root_token(short_lived))
    assert _ask(short_lived, username=username) == _ask(short_lived, username=username)
    _ask(short_lived, username=other)
    smtp_server.wait_for(f"{other}@example.org")
    time.sleep(0.5)
    assert len(smtp_server.mailbox.to(f"{username}@example.org")) == 1


def test_reset_refuses_a_weak_password_and_keeps_the_token(mail_server: ServerProcess,
                                                           smtp_server: SmtpServer) -> None:
    """The policy applies to a reset (400 naming the rule); the token stays usable."""
    username, _, _ = create_user(mail_server.url, root_token(mail_server))
    _ask(mail_server, username=username)
    token = _mailed_token(mail_server, smtp_server, f"{username}@example.org")
    status, body = _reset(mail_server, token, f"xx{username}xx")
    assert status == 400 and "not_username" in body["msg"]
    assert _reset(mail_server, token, f"good-{time.time_ns()}")[0] == 200


def test_reset_lifts_a_lockout(mail_server: ServerProcess, smtp_server: SmtpServer) -> None:
    """A locked account logs in again right after a password reset; the trail says so."""
    username, _, user_id = create_user(mail_server.url, root_token(mail_server))
    for _ in range(3):
        assert login(mail_server.url, username, "wrong-password").status_code == 401
    _ask(mail_server, username=username)
    token = _mailed_token(mail_server, smtp_server, f"{username}@example.org")
    new = f"unlocked-{time.time_ns()}"
    assert _reset(mail_server, token, new)[0] == 200
    assert login(mail_server.url, username, new).status_code == 200
    trail = HTTP.get(f"{mail_server.url}/audit", headers=auth(root_token(mail_server)),
                     params={"actor_id": user_id, "per_page": 100}, timeout=10).json()
    events = [e["event"] for e in reversed(trail["data"]) if e["event"] != "login_failed"]
    assert events == ["account_locked", "password_changed", "account_unlocked", "login"]


def test_only_the_token_hash_is_stored(mail_server: ServerProcess,
                                       smtp_server: SmtpServer) -> None:
    """The database holds the sha256 of the mailed token, never the token."""
    username, _, user_id = create_user(mail_server.url, root_token(mail_server))
    _ask(mail_server, username=username)
    token = _mailed_token(mail_server, smtp_server, f"{username}@example.org")
    stored = sql(mail_server, "SELECT token_hash FROM account_token WHERE user_id = :uid",
                 uid=user_id)
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]


def test_recovery_body_needs_a_name(mail_server: ServerProcess) -> None:
    """Neither username nor email is a 400 (v4's client sends one of them)."""
    response = HTTP.post(f"{mail_server.url}/recover/lost", json={}, timeout=10)
    assert response.status_code == 400
    assert "username or an e-mail address" in response.json()["msg"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_mailer_logs_in_with_the_smtp_credentials() -> None:
    """SmtpMailer sends after AUTH with the configured login; a wrong password is a MailError."""
    mailbox = Mailbox()

    def check(_server: Any, _session: Any, _envelope: Any, _mechanism: str,
              data: Any) -> AuthResult:
        return AuthResult(success=(data.login, data.password) == (b"relay", b"s3cret"))

    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=check,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    try:
        def settings(password: str) -> SmtpSettings:
            return SmtpSettings.model_validate({"host": "127.0.0.1", "port": port,
                                                "security": "none", "username": "relay",
                                                "password": password, "timeout_seconds": 2})

        SmtpMailer(settings("s3cret")).send(
            Mail(to="someone@example.org", subject="hi", body="hello"))
        assert [body_of(m).strip() for m in mailbox.to("someone@example.org")] == ["hello"]
        with pytest.raises(MailError):
            SmtpMailer(settings("wrong")).send(
                Mail(to="other@example.org", subject="hi", body="hello"))
        assert mailbox.to("other@example.org") == []
    finally:
        controller.stop()
