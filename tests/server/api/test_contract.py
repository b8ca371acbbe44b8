"""The contract typed both ways: every operation's answers are documented and kept.

The server's own OpenAPI document is read from the live server; the checks here are about
its shape (every answer has a schema, errors are ``{"msg"}`` with 400 not 422) and about the
statuses that used to be wrong (405 ``Allow``, ids beyond 64 bits, page sizes).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.fixtures.server import start_server
from tests.server.conftest import HTTP, World, auth
from v6flow.schemas import MAX_ID, ValidationMsg
from v6flow_server.api.error_handlers import register_error_handlers
from v6flow_server.api.pagination import MAX_PER_PAGE
from v6flow_server.auth.tokens import TokenIssuer

TOO_BIG = str(MAX_ID + 1)


@pytest.fixture(scope="module")
def spec(world: World) -> dict[str, Any]:
    """The live server's OpenAPI document."""
    return dict(HTTP.get(f"{world.url}/openapi.json").json())


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_operation_documents_a_typed_answer(spec: dict[str, Any]) -> None:
    """Each operation has a 2xx answer with a schema; errors are Msg/ValidationMsg, no 422."""
    operations = list(_operations(spec))
    assert len(operations) >= 40
    for method, path, operation in operations:
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert success, (method, path)
        content = responses[success[0]].get("content", {})
        assert content, f"{method} {path} documents no answer body"
        assert "422" not in responses, (method, path)
        for code, answer in responses.items():
            if code.startswith(("4", "5")):
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[-1] in {"Msg", "ValidationMsg"}, (method, path, code)
        if operation.get("security"):
            assert "401" in responses, (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_validation_errors_are_400_with_the_documented_shape(world: World) -> None:
    """A bad body answers 400 naming the field, in the ValidationMsg shape."""
    response = world.call("POST", "/organization", json={"name": ""})
    assert response.status_code == 400
    body = ValidationMsg.model_validate(response.json())
    assert [e.field for e in body.errors] == ["name"]


def test_method_not_allowed_lists_every_method_of_the_path(world: World) -> None:
    """405 answers Allow with the methods of all routes of the path, not of the first."""
    response = world.call("PUT", f"/organization/{world.org_ids[0]}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    assert "PUT" in response.json()["msg"]


@pytest.mark.parametrize("path", [
    f"/task/{TOO_BIG}", f"/run/{TOO_BIG}", f"/organization/{TOO_BIG}", "/task/0",
])
def test_path_ids_beyond_a_row_id_are_400_naming_the_parameter(world: World, path: str) -> None:
    """An id outside 1..2^63-1 in the path is a 400, not a database overflow."""
    response = world.call("GET", path)
    assert response.status_code == 400, response.text
    assert "_id" in response.json()["errors"][0]["field"]


def test_query_and_body_ids_beyond_a_row_id_are_400(world: World) -> None:
    """Filters, paging and body ids are range-checked too."""
    for params in ({"task_id": TOO_BIG}, {"page": TOO_BIG}, {"per_page": MAX_PER_PAGE + 1}):
        response = world.call("GET", "/run", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["errors"][0]["field"] == next(iter(params))
    response = world.call("POST", "/kill/task", json={"id": int(TOO_BIG)})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "id"


def test_a_signed_token_whose_subject_is_beyond_a_row_id_is_401(
        tmp_path: Path) -> None:
    """A correctly signed token naming a subject outside the id range is 401, not 500."""
    # Prepare: a server whose signing key we know, and tokens it would accept but for sub.
    secret = secrets.token_urlsafe(32)
    proc = start_server(database_url=f"sqlite:///{tmp_path}/s.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=tmp_path,
                        extra_env={"V6FLOW_SERVER_JWT_SECRET": secret})
    try:
        issuer = TokenIssuer(secret=secret, access_minutes=5, refresh_minutes=5)
        for client_type in ("user", "node"):
            pair = issuer.issue_pair(subject_id=MAX_ID + 1, client_type=client_type)
            # Execute
            access = HTTP.get(f"{proc.url}/organization", headers=auth(pair.access_token))
            refresh = HTTP.post(f"{proc.url}/token/refresh", headers=auth(pair.refresh_token))
            # Assert
            assert (access.status_code, refresh.status_code) == (401, 401), client_type
        container = issuer.issue_container({"node_id": MAX_ID + 1, "task_id": 1,
                                            "collaboration_id": 1, "organization_id": 1,
                                            "image": "x"})
        response = HTTP.get(f"{proc.url}/organization", headers=auth(container))
        assert response.status_code == 401
        assert "Internal" not in proc.log_text() and "Traceback" not in proc.log_text()
    finally:
        proc.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_keep_alive_connection_survives_an_unexpected_error() -> None:
    """After a 500 the same connection serves the next request (it used to be reset)."""
    # Prepare: a real uvicorn with the server's error handling and a route that fails.
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    register_error_handlers(app)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=None,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        # Execute: two requests over one pooled connection.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                          limits=httpx.Limits(max_connections=1)) as client:
            first = client.get("/boom")
            second = client.get("/ok")
        # Assert
        assert first.status_code == 500
        assert first.json() == {"msg": "An unexpected error occurred on the server!"}
        assert second.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
