"""AlgorithmClient against a tiny real HTTP server on loopback, playing the node proxy."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.v6flow.algorithm.conftest import TokenFactory
from v6flow._retry import REACH_NODE_PROXY, WAIT_FOR_SUBTASK
from v6flow.algorithm import AlgorithmClient
from v6flow.algorithm import client as client_module
from v6flow.errors import AuthenticationError, NotFound, RunFailed, ServerError
from v6flow.wire import b64encode_str, input_from_wire, json_to_bytes

Route = Callable[["Seen"], tuple[int, Any]]


@dataclass
class Seen:
    """One request as the fake proxy received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class FakeProxy:
    """Routes ``(METHOD, path)`` → handler; records every request."""

    url: str = ""
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Route | tuple[int, Any]) -> None:
        self.routes[(method, path)] = answer if callable(answer) else (lambda _s: answer)


@pytest.fixture
def proxy() -> Iterator[FakeProxy]:
    """A real ThreadingHTTPServer on 127.0.0.1:<ephemeral> serving under /api."""
    fake = FakeProxy()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen = Seen(self.command, parts.path.removeprefix("/api"),
                        {k: v[0] for k, v in parse_qs(parts.query).items()},
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw) if raw else None, time.monotonic())
            fake.seen.append(seen)
            route = fake.routes.get((self.command, seen.path))
            status, body = route(seen) if route else (404, {"msg": "no route"})
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "text/html" if isinstance(body, bytes)
                             else "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def token(token_factory: TokenFactory) -> str:
    """Container token: org 3, collaboration 5, task 42, one database with a query."""
    return token_factory(databases=[{"label": "default", "query": "select 1"}])


def _client(proxy: FakeProxy, token: str) -> AlgorithmClient:
    host, port = proxy.url.rsplit(":", 1)
    return AlgorithmClient(token, host, port, "/api")


def test_every_request_carries_the_container_token(proxy: FakeProxy, token: str) -> None:
    """Authorization: Bearer <container token>, paths relative to HOST:PORT/API_PATH."""
    proxy.on("GET", "/organization/8", (200, {"id": 8, "public_key": ""}))
    assert _client(proxy, token).organization.get(8) == {"id": 8, "public_key": ""}
    assert proxy.seen[0].headers["authorization"] == f"Bearer {token}"


def test_organization_list_follows_links_next(proxy: FakeProxy, token: str) -> None:
    """organization.list pages with collaboration_id and page=N until links.next is absent."""
    def page(seen: Seen) -> tuple[int, Any]:
        n = int(seen.query["page"])
        links = {"next": f"/api/organization?page={n + 1}"} if n < 3 else {}
        return 200, {"data": [{"id": n * 10 + i} for i in range(2)], "links": links}

    proxy.on("GET", "/organization", page)
    orgs = _client(proxy, token).organization.list()
    assert [o["id"] for o in orgs] == [10, 11, 20, 21, 30, 31]
    assert [s.query for s in proxy.seen] == [
        {"collaboration_id": "5", "page": str(n)} for n in (1, 2, 3)]


def test_task_create_body_follows_the_contract(proxy: FakeProxy, token: str) -> None:
    """task.create: blobstream status, org lookups, then POST /task with the §2.2 body."""
    proxy.on("GET", "/blobstream/status", (200, {"blob_store_enabled": False}))
    for org in (1, 2):
        proxy.on("GET", f"/organization/{org}", (200, {"id": org, "public_key": ""}))
    proxy.on("POST", "/task", (201, {"id": 77}))
    input_ = {"method": "column_stats", "args": [], "kwargs": {"column": "age"}}

    task = _client(proxy, token).task.create(input_, [1, 2], name="fan-out")

    assert task == {"id": 77}
    assert [(s.method, s.path) for s in proxy.seen] == [
        ("GET", "/blobstream/status"), ("GET", "/organization/1"),
        ("GET", "/organization/2"), ("POST", "/task")]
    body = proxy.seen[-1].body
    assert {k: v for k, v in body.items() if k != "organizations"} == {
        "name": "fan-out", "image": "v6flow-test/basic:latest", "collaboration_id": 5,
        "description": "task from container on node_id=11",
        "databases": [{"label": "default", "query": "select 1"}]}
    assert [o["id"] for o in body["organizations"]] == [1, 2]
    assert all(input_from_wire(o["input"]) == input_ for o in body["organizations"])


def test_wait_for_results_polls_fast_and_orders_by_run(proxy: FakeProxy, token: str) -> None:
    """Status is polled from 0.1 s (growing); results come back by run id ascending."""
    statuses = iter(["pending", "active", "active", "completed"])
    proxy.on("GET", "/task/9/status", lambda _s: (200, {"status": next(statuses)}))
    values = {31: {"org": 1}, 32: {"org": 2}, 33: None}
    proxy.on("GET", "/result", (200, {"data": [  # newest first, like v4
        {"id": r, "run": {"id": r}, "blob_storage_used": False,
         "result": b64encode_str(json_to_bytes(v)) if v else ""}
        for r, v in sorted(values.items(), reverse=True)], "links": {}}))

    started = time.monotonic()
    results = _client(proxy, token).wait_for_results(9)

    assert results == [{"org": 1}, {"org": 2}]  # the empty result is left out, like v4
    polls = [s.at for s in proxy.seen if s.path == "/task/9/status"]
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    scheduled = list(itertools.islice(WAIT_FOR_SUBTASK.delays(), 3))
    assert len(polls) == 4
    assert all(gap >= want - 0.01 for gap, want in zip(gaps, scheduled, strict=True))
    assert gaps[0] < 0.5  # v4 waits a full second before the second poll
    assert time.monotonic() - started < 2.5


def test_wait_for_results_raises_run_failed(proxy: FakeProxy, token: str) -> None:
    """A crashed subtask raises RunFailed with the failed run's status, org and log tail."""
    proxy.on("GET", "/task/9/status", (200, {"status": "crashed"}))
    proxy.on("GET", "/run", (200, {"data": [
        {"id": 5, "status": "completed", "organization": {"id": 1}, "log": ""},
        {"id": 6, "status": "crashed", "organization": {"id": 2},
         "log": "Traceback...\nValueError: bad"}], "links": {}}))
    with pytest.raises(RunFailed) as info:
        _client(proxy, token).wait_for_results(9)
    assert (info.value.run_id, info.value.organization_id, info.value.status) == (
        6, 2, "crashed")
    assert "ValueError: bad" in info.value.log_tail


@pytest.mark.parametrize("status, body, error, msg", [
    (401, {"msg": "Container-token is not valid"}, AuthenticationError,
     "Container-token is not valid"),
    (404, {"msg": "Task id=3 not found"}, NotFound, "Task id=3 not found"),
    (500, b"<html>Internal Server Error</html>", ServerError, "Internal Server Error"),
])
def test_error_bodies_become_typed_errors(proxy: FakeProxy, token: str, status: int,
                                          body: Any, error: type[Exception], msg: str) -> None:
    """JSON error bodies map to ClientError subclasses carrying the server's msg."""
    proxy.on("GET", "/task/3", (status, body))
    with pytest.raises(error, match=msg) as info:
        _client(proxy, token).task.get(3)
    assert info.value.status_code == status  # type: ignore[attr-defined]


def test_unreachable_proxy_is_server_error(token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody listening: after the connect retries, ServerError naming the proxy URL."""
    monkeypatch.setattr(client_module, "REACH_NODE_PROXY", REACH_NODE_PROXY.bounded(attempts=2))
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerError, match=f"127.0.0.1:{port}"):
        AlgorithmClient(token, "http://127.0.0.1", port).task.get(1)


def test_token_must_be_a_container_jwt() -> None:
    """A token that is not a JWT is refused when the client is built."""
    from v6flow.errors import DeserializationError

    with pytest.raises(DeserializationError):
        AlgorithmClient("not-a-jwt", "http://127.0.0.1", 1)
