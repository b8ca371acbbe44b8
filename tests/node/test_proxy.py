"""The container proxy forwards what containers may use, refuses the rest, answers JSON."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from v6flow_node.proxy import ProxyServer, is_allowed

# The upstream fixture and the async tests must share one event loop.
same_loop = pytest.mark.asyncio(loop_scope="session")


async def _echo(request: Request) -> JSONResponse:
    RECEIVED.append(f"{request.method} {request.url.path}")
    body = (await request.body()).decode()
    return JSONResponse({"method": request.method, "path": request.url.path,
                         "query": sorted(request.query_params.multi_items()),
                         "authorization": request.headers.get("authorization"),
                         "body": json.loads(body) if body else None},
                        status_code=418 if request.url.path.endswith("/418") else 201)


#: Seconds the fake event stream waits between its two events.
STREAM_GAP = 2.0


async def _events(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"event: sync\ndata: {}\n\n"
        await asyncio.sleep(STREAM_GAP)
        token = json.dumps(request.headers.get("authorization"))
        yield f"event: run_update\ndata: {token}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream")


#: Paths the upstream echo server received, in order.
RECEIVED: list[str] = []


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """A real uvicorn echo server on an ephemeral loopback port; yields its API base."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[Route("/api/events", _events),
                            Route("/api/{p:path}", _echo,
                                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    server.should_exit = True
    await task


async def _proxy(server_url: str, tmp_path: Path) -> tuple[ProxyServer, httpx.AsyncClient]:
    upstream_client = httpx.AsyncClient()
    proxy = ProxyServer(server_url=server_url, socket_path=tmp_path / "p" / "proxy.sock",
                        client=upstream_client)
    await proxy.start()
    caller = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(proxy.socket_path)),
                               base_url="http://127.0.0.1:8080")
    return proxy, caller


@same_loop
async def test_forwards_method_path_query_body_and_token(upstream: str, tmp_path: Path) -> None:
    """Method, path, query, JSON body and the caller's Authorization reach the server."""
    # Prepare
    proxy, caller = await _proxy(upstream, tmp_path)
    try:
        # Execute
        response = await caller.post("/task?a=1&a=2&b=x", json={"k": [1, 2]},
                                     headers={"Authorization": "Bearer container-jwt"})
        teapot = await caller.get("/result/418")
    finally:
        await caller.aclose()
        await proxy.stop()
    # Assert
    assert response.status_code == 201
    assert response.json() == {"method": "POST", "path": "/api/task",
                               "query": [["a", "1"], ["a", "2"], ["b", "x"]],
                               "authorization": "Bearer container-jwt", "body": {"k": [1, 2]}}
    assert teapot.status_code == 418  # the server's status comes back unchanged
    assert not proxy.socket_path.exists()


@same_loop
async def test_unreachable_server_gives_json_msg(tmp_path: Path) -> None:
    """When the server is down the proxy answers JSON {"msg"}, never HTML."""
    # Prepare: a port nobody listens on
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proxy, caller = await _proxy(f"http://127.0.0.1:{port}/api", tmp_path)
    try:
        # Execute
        response = await caller.get("/organization", params={"collaboration_id": 1})
    finally:
        await caller.aclose()
        await proxy.stop()
    # Assert
    assert response.status_code == 502
    assert "unreachable" in response.json()["msg"]


@same_loop
async def test_event_stream_is_relayed_as_it_arrives(upstream: str, tmp_path: Path) -> None:
    """``GET /events`` is streamed: the first event arrives long before the stream ends."""
    proxy, caller = await _proxy(upstream, tmp_path)
    started = asyncio.get_running_loop().time()
    arrivals: list[float] = []
    text = ""
    try:
        async with caller.stream("GET", "/events",
                                 headers={"Authorization": "Bearer container-jwt"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for chunk in response.aiter_text():
                arrivals.append(asyncio.get_running_loop().time() - started)
                text += chunk
    finally:
        await caller.aclose()
        await proxy.stop()
    assert "event: sync" in text and '"Bearer container-jwt"' in text
    assert arrivals[0] < STREAM_GAP / 2, arrivals  # not buffered until the end
    assert arrivals[-1] >= STREAM_GAP * 0.9


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "organization"), ("GET", "organization/3"), ("GET", "collaboration/1"),
    ("POST", "task"), ("GET", "task/12"), ("GET", "task/12/status"), ("POST", "kill/task"),
    ("GET", "run"), ("GET", "run/5"), ("GET", "result"), ("GET", "result/5"),
    ("GET", "study/2"), ("GET", "vpn/algorithm/addresses"), ("GET", "blobstream/status"),
    ("GET", "blobstream/0f8fad5b-d9cb-469f-a165-70867728950e"), ("POST", "blobstream"),
    ("GET", "events"), ("GET", "health"), ("GET", "version"),
])
def test_algorithm_client_surface_is_allowed(method: str, path: str) -> None:
    """Every call of the v4 AlgorithmClient and of v6flow's central flows is allowed."""
    assert is_allowed(method, path)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "token/user"), ("POST", "token/node"), ("POST", "token/refresh"),
    ("POST", "token/container"), ("GET", "user"), ("GET", "user/1"), ("POST", "user"),
    ("GET", "role"), ("GET", "rule"), ("GET", "node"), ("POST", "node"),
    ("POST", "organization"), ("PATCH", "organization/1"), ("POST", "collaboration"),
    ("GET", "collaboration"), ("PATCH", "run/1"), ("POST", "run/1/log"),
    ("DELETE", "task/1"), ("DELETE", "port"), ("POST", "kill/node/tasks"),
    ("GET", "task"), ("PUT", "task"), ("HEAD", "organization"), ("POST", "organization/1"),
    ("GET", "task/../token/user"), ("GET", "organization/1/../../user"), ("GET", "/user"),
    ("GET", "organization/"), ("GET", "task/0"), ("GET", "task/1a"), ("GET", ""),
    ("GET", "blobstream/not-a-uuid"), ("GET", "events/extra"),
])
def test_everything_else_is_refused(method: str, path: str) -> None:
    """Token, user, role, node and admin routes, other methods and odd paths are refused."""
    assert not is_allowed(method, path)


@same_loop
async def test_refused_request_never_reaches_the_server(upstream: str, tmp_path: Path) -> None:
    """POST /token/user (also disguised) gets a JSON 403 from the proxy; upstream sees none."""
    # Prepare
    proxy, caller = await _proxy(upstream, tmp_path)
    RECEIVED.clear()
    try:
        # Execute
        answers = [
            await caller.post("/token/user", json={"username": "root", "password": "x"}),
            await caller.post("/task/%2e%2e/token/user", json={}),
            await caller.request("PROPFIND", "/organization"),
            await caller.get("/user", headers={"Authorization": "Bearer container-jwt"}),
        ]
        allowed = await caller.get("/organization")
    finally:
        await caller.aclose()
        await proxy.stop()
    # Assert
    assert [a.status_code for a in answers] == [403] * len(answers)
    assert all(a.json()["msg"].startswith("node proxy: ") for a in answers)
    assert "/token/user" in answers[0].json()["msg"]
    assert allowed.status_code == 201
    assert RECEIVED == ["GET /api/organization"]


@same_loop
async def test_socket_is_only_for_the_container_user(upstream: str, tmp_path: Path) -> None:
    """The proxy socket is mode 0600 and owned by the user containers run as."""
    proxy, caller = await _proxy(upstream, tmp_path)
    try:
        info = proxy.socket_path.stat()
    finally:
        await caller.aclose()
        await proxy.stop()
    assert info.st_mode & 0o777 == 0o600
    assert info.st_uid == (65534 if os.geteuid() == 0 else os.geteuid())
