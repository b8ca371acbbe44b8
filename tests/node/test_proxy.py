"""The container proxy forwards transparently and always answers JSON."""

from __future__ import annotations

import asyncio
import json
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

from node.proxy import ProxyServer

# The upstream fixture and the tests must share one event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _echo(request: Request) -> JSONResponse:
    body = (await request.body()).decode()
    return JSONResponse({"method": request.method, "path": request.url.path,
                         "query": sorted(request.query_params.multi_items()),
                         "authorization": request.headers.get("authorization"),
                         "body": json.loads(body) if body else None},
                        status_code=418 if request.url.path.endswith("/teapot") else 201)


#: Seconds the fake event stream waits between its two events.
STREAM_GAP = 2.0


async def _events(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"event: sync\ndata: {}\n\n"
        await asyncio.sleep(STREAM_GAP)
        token = json.dumps(request.headers.get("authorization"))
        yield f"event: run_update\ndata: {token}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream")


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


async def test_forwards_method_path_query_body_and_token(upstream: str, tmp_path: Path) -> None:
    """Method, path, query, JSON body and the caller's Authorization reach the server."""
    # Prepare
    proxy, caller = await _proxy(upstream, tmp_path)
    try:
        # Execute
        response = await caller.post("/task?a=1&a=2&b=x", json={"k": [1, 2]},
                                     headers={"Authorization": "Bearer container-jwt"})
        teapot = await caller.get("/result/teapot")
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
