"""Helpers of the account tests: dedicated servers with account settings, users, logins."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import HTTP, auth, unique

TOKEN_LINE = re.compile(r"^Reset token: (\S+)", re.MULTILINE)


def start_backend(backend: str, tmp_path_factory: pytest.TempPathFactory,
                  postgres_databases: Callable[[], str], env: dict[str, str]) -> ServerProcess:
    """A server of its own on a fresh SQLite or PostgreSQL database, with ``env`` settings."""
    directory: Path = tmp_path_factory.mktemp(f"accounts-{backend}")
    url = (f"sqlite:///{directory}/server.sqlite" if backend == "sqlite"
           else postgres_databases())
    return start_server(database_url=url, root_password=secrets.token_urlsafe(12),
                        log_dir=directory, extra_env=env)


def login(url: str, username: str, password: str, code: str | int | None = None,
          client: httpx.Client = HTTP) -> httpx.Response:
    """``POST /token/user`` as the v4 client sends it."""
    body: dict[str, Any] = {"username": username, "password": password}
    if code is not None:
        body["mfa_code"] = code
    return client.post(f"{url}/token/user", json=body, timeout=10)


def root_token(proc: ServerProcess, secret: str | None = None) -> str:
    """An access token of root (with ``secret``'s code when the server requires 2FA)."""
    code = pyotp.TOTP(secret).now() if secret else None
    response = login(proc.url, "root", proc.root_password, code)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def create_user(url: str, token: str, *, password: str | None = None,
                email: str | None = None) -> tuple[str, str, int]:
    """A new user of root's organization; returns ``(username, password, id)``."""
    username = unique("user")
    password = password or secrets.token_urlsafe(12)
    response = HTTP.post(f"{url}/user", headers=auth(token), timeout=10, json={
        "username": username, "password": password, "firstname": "Ac", "lastname": "Count",
        "email": email or f"{username}@example.org"})
    assert response.status_code == 201, response.text
    return username, password, int(response.json()["id"])


def reset_token(mail_body: str) -> str:
    """The token of a recovery mail."""
    found = TOKEN_LINE.search(mail_body)
    assert found, mail_body
    return found.group(1)


def body_of(message: Any) -> str:
    """The plain-text body of a received mail."""
    return str(message.get_body(preferencelist=("plain",)).get_content())


def sql(proc: ServerProcess, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run SQL on the server's database directly (reads what the server stored)."""
    engine = create_engine(proc.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()
