"""The access log: one structured line per request, countable, with no secrets in it."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import jwt

from tests.fixtures.server import ServerProcess
from tests.server.conftest import HTTP, World, auth, unique

FIELDS = {"method", "path", "status", "duration_ms", "principal_type", "principal_id", "client"}


def _request_lines(server: ServerProcess, needle: str, expected: int = 1,
                   timeout: float = 5.0) -> list[dict[str, Any]]:
    """The access-log entries whose path or query contains ``needle`` (waits for ``expected``).

    The line is written just after the response went out, so it may lag the response a bit.
    """
    end = time.monotonic() + timeout
    while True:
        found = []
        for line in server.log_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (isinstance(entry, dict) and entry.get("event") == "request"
                    and needle in entry.get("path", "") + entry.get("query", "")):
                found.append(entry)
        if len(found) >= expected or time.monotonic() > end:
            return found
        time.sleep(0.05)


def test_a_request_is_one_line_with_its_fields(api_server: ServerProcess, world: World) -> None:
    """Method, path, status, duration, principal and client; exactly one line."""
    marker = uuid.uuid4().hex
    world.ok("GET", f"/organization/{world.org_ids[0]}", params={"marker": marker})
    time.sleep(0.5)  # a second line, if there were one, would be written by now
    lines = _request_lines(api_server, marker)
    assert len(lines) == 1
    line = lines[0]
    assert set(line) >= FIELDS
    root_id = jwt.decode(world.root_token, options={"verify_signature": False})["sub"]
    assert (line["method"], line["path"], line["query"], line["status"]) == (
        "GET", f"/api/organization/{world.org_ids[0]}", f"marker={marker}", 200)
    assert (line["principal_type"], line["principal_id"]) == ("user", root_id)
    assert line["client"] == "127.0.0.1" and line["duration_ms"] >= 0


def test_refused_requests_are_logged_without_a_principal(api_server: ServerProcess,
                                                          world: World) -> None:
    """A request without a token (401) and an unknown path (404) each get their line."""
    marker = uuid.uuid4().hex
    assert HTTP.get(f"{world.url}/task", params={"marker": marker}).status_code == 401
    assert HTTP.get(f"{world.url}/no-such-{marker}").status_code == 404
    lines = _request_lines(api_server, marker, expected=2)
    assert sorted(line["status"] for line in lines) == [401, 404]
    assert all(line["principal_type"] is None for line in lines)


def test_login_line_has_no_password(api_server: ServerProcess, world: World) -> None:
    """Failed and successful logins are logged; the password appears nowhere in the log."""
    password = secrets.token_urlsafe(16)
    wrong = secrets.token_urlsafe(16)
    role_id = world.ok("GET", "/role", params={"name": "Viewer"})["data"][0]["id"]
    username = unique("logged")
    world.ok("POST", "/user", json={"username": username, "password": password,
                                    "firstname": "L", "lastname": "G",
                                    "organization_id": world.org_ids[0], "roles": [role_id]})
    marker = uuid.uuid4().hex
    for attempt in (wrong, password):
        HTTP.post(f"{world.url}/token/user", params={"marker": marker},
                  json={"username": username, "password": attempt})
    lines = _request_lines(api_server, marker, expected=2)
    assert sorted(line["status"] for line in lines) == [200, 401]
    assert {line["path"] for line in lines} == {"/api/token/user"}
    log = api_server.log_text()
    assert password not in log and wrong not in log


def test_query_tokens_and_authorization_are_not_logged(api_server: ServerProcess,
                                                        world: World) -> None:
    """Credential-like query values are redacted; the bearer token is never written."""
    secret, marker = secrets.token_urlsafe(16), uuid.uuid4().hex
    HTTP.get(f"{world.url}/version", headers=auth(world.root_token),
             params={"marker": marker, "token": secret, "api_key": secret, "name": "kept"})
    lines = _request_lines(api_server, marker)
    assert len(lines) == 1
    assert lines[0]["query"] == (f"marker={marker}&token=%5Bredacted%5D"
                                 "&api_key=%5Bredacted%5D&name=kept")
    log = api_server.log_text()
    assert secret not in log and world.root_token not in log
