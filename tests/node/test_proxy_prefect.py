"""The node proxy's ``prefect/...`` routes: a central flow's own Prefect requests, streamed.

The server decides which flow runs are the container's (tests/server/api/
test_prefect_proxy.py); the proxy lets only the paths of a flow run's requests through.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from v6flow_node.proxy import ProxyServer, is_allowed

same_loop = pytest.mark.asyncio(loop_scope="session")
RUN = str(uuid.uuid4())


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "prefect/admin/version"), ("GET", "prefect/csrf-token"),
    ("POST", "prefect/flows/"), ("POST", "prefect/flow_runs/"),
    ("GET", f"prefect/flow_runs/{RUN}"), ("PATCH", f"prefect/flow_runs/{RUN}"),
    ("POST", f"prefect/flow_runs/{RUN}/set_state"), ("PATCH", f"prefect/flow_runs/{RUN}/labels"),
    ("POST", "prefect/logs/"), ("POST", "prefect/events"), ("POST", "prefect/artifacts/"),
    ("PATCH", f"prefect/artifacts/{RUN}"),
])
def test_a_flow_runs_own_requests_are_allowed(method: str, path: str) -> None:
    """What Prefect's engine sends for one flow run passes the allow-list."""
    assert is_allowed(method, path)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "prefect/deployments/"), ("POST", "prefect/flow_runs/filter"),
    ("POST", "prefect/block_documents/filter"), ("GET", "prefect/work_pools/"),
    ("DELETE", f"prefect/flow_runs/{RUN}"), ("GET", f"prefect/flow_runs/{RUN}/../x"),
    ("POST", "prefect/variables/"), ("GET", "prefect/events/in"),
])
def test_other_prefect_requests_are_refused(method: str, path: str) -> None:
    """Deployments, filters, blocks, pools, deletes, variables, sockets: not even forwarded."""
    assert not is_allowed(method, path)


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "body": json.loads(await request.body()),
                         "authorization": request.headers.get("authorization"),
                         "api_version": request.headers.get("x-prefect-api-version")},
                        status_code=201, headers={"Retry-After": "2", "X-Private": "no",
                                                  "X-V6flow-Prefect-UI": "http://ui"})


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """A real uvicorn echo server on a loopback port; yields its API base."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[Route("/api/{p:path}", _echo, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    server.should_exit = True
    await task


@same_loop
async def test_prefect_requests_stream_through_with_their_headers(upstream: str,
                                                                  tmp_path: Path) -> None:
    """A streamed (chunked) body, the token and Prefect's headers reach the server; its
    status and Prefect-related answer headers come back, others do not."""
    # Prepare
    proxy = ProxyServer(server_url=upstream, socket_path=tmp_path / "p" / "proxy.sock",
                        client=httpx.AsyncClient())
    await proxy.start()
    caller = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(proxy.socket_path)),
                               base_url="http://127.0.0.1:8080")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'[{"flow_run_id": '
        yield json.dumps(RUN).encode() + b"}]"

    try:
        # Execute
        response = await caller.post("/prefect/logs/", content=chunks(), headers={
            "Authorization": "Bearer container-jwt", "X-Prefect-Api-Version": "0.8.4",
            "Content-Type": "application/json"})
    finally:
        await caller.aclose()
        await proxy.stop()
    # Assert
    assert response.status_code == 201
    assert response.json() == {"path": "/api/prefect/logs/", "body": [{"flow_run_id": RUN}],
                               "authorization": "Bearer container-jwt",
                               "api_version": "0.8.4"}
    assert response.headers["retry-after"] == "2"
    assert response.headers["x-v6flow-prefect-ui"] == "http://ui"
    assert "x-private" not in response.headers
