"""Start-up behaviour: migrations on first start, refusal without a root password, restarts."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.fixtures.server import SERVER_COMMAND, free_port, server_env, start_server
from tests.server.conftest import auth, login


def test_first_start_without_password_refuses_clearly(tmp_path: Path) -> None:
    """Exit code 2, one line naming root_password, no traceback."""
    result = subprocess.run(
        [*SERVER_COMMAND, "--port", str(free_port())],
        env=server_env(f"sqlite:///{tmp_path}/empty.sqlite", None),
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "root_password" in result.stderr and "V6FLOW_SERVER_ROOT_PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_setting_is_named(tmp_path: Path) -> None:
    """A wrong value exits 2 with the field's name."""
    result = subprocess.run(
        [*SERVER_COMMAND], env=server_env("mysql://nope", "pw"),
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "database_url" in result.stderr and "Traceback" not in result.stderr


def test_restart_keeps_secret_and_data(tmp_path: Path,
                                      postgres_url: Callable[[], str]) -> None:
    """Tokens issued before a restart stay valid; objects survive; no second root (PostgreSQL)."""
    url = postgres_url()
    password = secrets.token_urlsafe(12)
    first = start_server(database_url=url, root_password=password, log_dir=tmp_path)
    try:
        token = login(first.url, "root", password)
        created = httpx.post(f"{first.url}/organization", json={"name": "survivor"},
                             headers=auth(token)).json()
    finally:
        first.stop()
    # the password is not needed any more once root exists
    second = start_server(database_url=url, root_password="", log_dir=tmp_path, port=first.port)
    try:
        response = httpx.get(f"{second.url}/organization/{created['id']}", headers=auth(token))
        assert response.status_code == 200 and response.json()["name"] == "survivor"
        users = httpx.get(f"{second.url}/user", params={"username": "root"},
                          headers=auth(token)).json()["data"]
        assert len(users) == 1
    finally:
        second.stop()

