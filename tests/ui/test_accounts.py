"""Account features in the browser: changing the password and two-factor login.

They need the server's ``PATCH /api/password/change`` and TOTP second factor
(``V6FLOW_SERVER_TWO_FACTOR_AUTH``), built on another branch: until it is merged these tests
fail here by design.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.fixtures.server import ServerProcess, start_server
from tests.ui.browser import api_token, log_in, ui_url


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 code (SHA-1, 6 digits, 30 s): an independent computation of what apps show."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


@pytest.fixture(scope="module")
def two_factor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that requires a second factor of every user."""
    directory: Path = tmp_path_factory.mktemp("two-factor")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env={"V6FLOW_SERVER_TWO_FACTOR_AUTH": "true"})
    yield proc
    proc.stop()


def _login(server: ServerProcess, username: str, password: str,
           secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "password": password}
    if secret:
        body["mfa_code"] = totp(secret)
    response = httpx.post(f"{server.url}/token/user", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(scope="module")
def root_token(two_factor_server: ServerProcess) -> str:
    """Root's access token: root enrols through the API (first login), then logs in with a
    code (once: a code is accepted only once)."""
    answer = _login(two_factor_server, "root", two_factor_server.root_password)
    assert answer.get("otp_secret"), f"the server did not enrol root (answered {sorted(answer)})"
    tokens = _login(two_factor_server, "root", two_factor_server.root_password,
                    str(answer["otp_secret"]))
    return str(tokens["access_token"])


def _new_user(server: ServerProcess, token: str) -> tuple[str, str]:
    """A user without a second factor yet, created by root; (username, password)."""
    headers = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{server.url}/user/1", headers=headers, timeout=30).json()
    username, password = f"mfa-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    created = httpx.post(f"{server.url}/user", headers=headers, timeout=30, json={
        "username": username, "password": password, "roles": [],
        "organization_id": me["organization"]["id"]})
    assert created.status_code == 201, created.text
    return username, password


def test_password_change(page: Any, server: ServerProcess) -> None:
    """The account page changes the password: the new one logs in through the API."""
    # Prepare
    root = api_token(server.url, "root", server.root_password)
    me = httpx.get(f"{server.url}/user/1", headers={"Authorization": f"Bearer {root}"},
                   timeout=30).json()
    username, old, new = f"pw-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, uuid.uuid4().hex
    created = httpx.post(f"{server.url}/user", headers={"Authorization": f"Bearer {root}"},
                         json={"username": username, "password": old, "roles": [],
                               "organization_id": me["organization"]["id"]}, timeout=30)
    assert created.status_code == 201, created.text
    log_in(page, ui_url(server.url), username, old, "/account")
    form = page.get_by_role("form", name="Change password")
    form.get_by_label("Current password").fill(old)
    form.get_by_label(re.compile(r"^New password\W*$")).fill(new)
    form.get_by_label("New password again").fill(new)
    # Execute
    form.get_by_role("button", name="Change password").click()
    # Assert
    expect(page.locator(".message-success")).to_be_visible()
    assert api_token(server.url, username, new)


def test_two_factor_enrolment_then_login_with_the_code(
        page: Any, two_factor_server: ServerProcess, root_token: str) -> None:
    """A first login shows the QR code and key; the app's code then logs the user in."""
    # Prepare
    username, password = _new_user(two_factor_server, root_token)
    page.goto(ui_url(two_factor_server.url) + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("code.secret").inner_text()
    # Execute
    page.get_by_label("Authentication code").fill(totp(secret))
    page.get_by_role("button", name="Verify").click()
    # Assert
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_an_enrolled_user_is_asked_for_the_code(
        page: Any, two_factor_server: ServerProcess, root_token: str) -> None:
    """A user with a second factor gets the code step; a wrong code shows on its field."""
    # Prepare
    username, password = _new_user(two_factor_server, root_token)
    secret = str(_login(two_factor_server, username, password)["otp_secret"])
    page.goto(ui_url(two_factor_server.url) + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    code = page.get_by_label("Authentication code")
    code.fill(f"{(int(totp(secret)) + 500_000) % 1_000_000:06d}")
    page.get_by_role("button", name="Verify").click()
    expect(code).to_have_attribute("aria-invalid", "true")
    # Execute
    code.fill(totp(secret))
    page.get_by_role("button", name="Verify").click()
    # Assert
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.fixture(scope="module")
def long_password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose password policy asks for at least 14 characters."""
    directory: Path = tmp_path_factory.mktemp("long-passwords")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env={"V6FLOW_SERVER_PASSWORD_MIN_LENGTH": "14"})
    yield proc
    proc.stop()


def test_password_forms_follow_the_servers_minimum_length(
        page: Any, long_password_server: ServerProcess) -> None:
    """The account page says and checks the server's minimum (14 here), before any request."""
    # Prepare
    server = long_password_server
    log_in(page, ui_url(server.url), "root", server.root_password, "/account")
    form = page.get_by_role("form", name="Change password")
    too_short = "x" * 13
    # Execute
    form.get_by_label("Current password").fill(server.root_password)
    form.get_by_label(re.compile(r"^New password\W*$")).fill(too_short)
    form.get_by_label("New password again").fill(too_short)
    form.get_by_role("button", name="Change password").click()
    # Assert
    expect(form.get_by_text("At least 14 characters.", exact=True)).to_be_visible()
    expect(form.get_by_text("Use at least 14 characters.", exact=True)).to_be_visible()
    assert api_token(server.url, "root", server.root_password)  # unchanged
