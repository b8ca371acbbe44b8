"""Hardened algorithm containers on a real node: privileges, limits, and the proxy allow-list.

The module runs one organization whose node has small limits (256 MiB, 64 PIDs, 1 CPU) and
reaches the server through a recording front, so the tests can tell exactly which requests
of an algorithm container reached the server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fixtures.docker import ALGORITHMS_DIR, BuildImage
from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import ServerProcess
from v6flow.wire import result_from_wire
from v6flow_node.proxy import AnyMethod

HARDENING_IMAGE = "v6flow-test/hardening:latest"
MEMORY_MIB = 256
PIDS = 64
CPUS = 1.0


class RecordingFront:
    """A real HTTP front of the server that records ``(method, path, client_type)`` it got.

    The server itself keeps no access log; this front stands where a reverse proxy would.
    """

    def __init__(self, server_url: str) -> None:
        """Bind a loopback port in front of ``server_url`` (an ``.../api`` base)."""
        parts = httpx.URL(server_url)
        self._origin = f"{parts.scheme}://{parts.host}:{parts.port}"
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}{parts.path}"
        self.seen: list[tuple[str, str, str]] = []
        app = Starlette(routes=[Route("/{path:path}", AnyMethod(self._forward))])
        self._server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off",
                                                     timeout_graceful_shutdown=2))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    async def _forward(self, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        kind = "none"
        if authorization.startswith("Bearer "):
            try:
                claims = jwt.decode(authorization[7:], options={"verify_signature": False})
                kind = str(claims.get("client_type"))
            except jwt.PyJWTError:
                kind = "invalid"
        self.seen.append((request.method, request.url.path, kind))
        headers = {k: v for k, v in request.headers.items()
                   if k in ("authorization", "content-type", "accept")}
        client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
        upstream = await client.send(client.build_request(
            request.method, self._origin + request.url.path,
            params=list(request.query_params.multi_items()), headers=headers,
            content=await request.body()), stream=True)

        async def close() -> None:
            await upstream.aclose()
            await client.aclose()

        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                 media_type=upstream.headers.get("content-type"),
                                 background=BackgroundTask(close))

    def start(self) -> None:
        """Serve in a background thread; returns once it listens."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self._server.started

    def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def hardening_image(algorithm_image: BuildImage) -> str:
    """``v6flow-test/hardening:latest`` from tests/algorithms/hardening."""
    return algorithm_image(ALGORITHMS_DIR / "hardening", HARDENING_IMAGE)


@pytest.fixture(scope="module")
def front(server: ServerProcess) -> Iterator[RecordingFront]:
    """The recording front of the session server."""
    recorder = RecordingFront(server.url)
    recorder.start()
    yield recorder
    recorder.stop()


@pytest.fixture(scope="module")
def limited(server: ServerProcess, base_image: str, hardening_image: str,
            front: RecordingFront, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Federation]:
    """One organization whose node has small limits and talks to the server via ``front``."""
    fed = create_federation(server_url=server.url, root_password=server.root_password,
                            directory=tmp_path_factory.mktemp("limited"),
                            base_image=base_image, test_image=hardening_image, sizes=(40,))
    node = fed.nodes[0]
    assert fed.stop_node(node) == 0
    config = yaml.safe_load(node.config_path.read_text())
    config["limits"] = {"memory": f"{MEMORY_MIB}m", "pids": PIDS, "cpus": CPUS}
    config["server_url"] = front.url
    node.config_path.write_text(yaml.safe_dump(config))
    fed.start_node(node)
    fed.wait_online(node)
    yield fed
    shutdown_federation(fed)


def _run(fed: Federation, method: str, **kwargs: Any) -> dict[str, Any]:
    task = fed.create_task(method, kwargs=kwargs, databases=[])
    (run,) = fed.wait_for_runs(task["id"], timeout=90)
    return run


def _result(fed: Federation, run: dict[str, Any]) -> Any:
    assert run["status"] == "completed", run["log"]
    (item,) = [r for r in fed.results(run["task"]["id"]) if r["run"]["id"] == run["id"]]
    return result_from_wire(item["result"])


def _wait_active(fed: Federation, task_id: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [r["status"] for r in fed.runs(task_id)] == ["active"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never became active: {fed.runs(task_id)}")


def _assert_node_unharmed(fed: Federation) -> None:
    node = fed.nodes[0]
    assert node.proc is not None and node.proc.poll() is None, node.log_text()[-3000:]
    assert fed.get(f"node/{node.node_id}")["status"] == "online"
    assert _result(fed, _run(fed, "sleep_sum", values=[2, 3], seconds=0)) == 5.0


def test_container_is_unprivileged_with_read_only_root(limited: Federation) -> None:
    """uid is not 0, no capabilities, no_new_privs; only contract mounts, /tmp, HOME write."""
    report = _result(limited, _run(limited, "privileges"))
    expected_uid = 65534 if os.geteuid() == 0 else os.geteuid()
    assert report["uid"] == report["euid"] == expected_uid != 0
    assert report["cap_eff"] == report["cap_prm"] == report["cap_bnd"] == "0" * 16
    assert report["no_new_privs"] == "1"
    assert report["write"] == {"root": "EROFS", "etc": "EROFS", "site_packages": "EROFS",
                               "output": "ok", "temporary_folder": "ok", "tmp": "ok",
                               "home": "ok"}
    assert report["home"] == "/tmp" and report["dont_write_bytecode"] is True


def test_container_gets_the_configured_limits(limited: Federation) -> None:
    """The container's own cgroup shows limits.memory, limits.pids and limits.cpus."""
    report = _result(limited, _run(limited, "privileges"))
    assert int(report["memory_limit"]) == MEMORY_MIB * 1024 * 1024
    assert int(report["pids_limit"]) == PIDS
    assert int(report["cpu_quota"]) / int(report["cpu_period"]) == CPUS


@pytest.mark.parametrize(("method", "reason"), [
    ("fork_forever", f"PID limit reached (limit {PIDS})"),
    ("allocate_forever", f"out of memory (limit {MEMORY_MIB} MiB)"),
])
def test_runaway_algorithm_crashes_with_reason_and_spares_the_node(
        limited: Federation, method: str, reason: str) -> None:
    """A fork bomb / memory hog ends `crashed` saying which limit; a neighbour completes."""
    # Prepare: a well-behaved run is active on the same node
    neighbour = limited.create_task("sleep_sum", kwargs={"values": [1.5, 2.5], "seconds": 4},
                                    databases=[])
    _wait_active(limited, neighbour["id"])
    # Execute
    runaway = _run(limited, method)
    # Assert
    assert runaway["status"] == "crashed", runaway["log"]
    assert f"[v6flow node] {reason}" in runaway["log"], runaway["log"][-2000:]
    (neighbour_run,) = limited.wait_for_runs(neighbour["id"], timeout=60)
    assert _result(limited, neighbour_run) == 4.0
    _assert_node_unharmed(limited)


#: Requests an algorithm container must not get through: token, user, admin, node routes.
REFUSED = [
    ["POST", "/token/user"], ["POST", "/token/node"], ["POST", "/token/refresh"],
    ["POST", "/token/container"], ["GET", "/user"], ["POST", "/user"], ["GET", "/role"],
    ["GET", "/rule"], ["GET", "/node"], ["POST", "/node"], ["POST", "/organization"],
    ["PATCH", "/run/1"], ["POST", "/run/1/log"], ["DELETE", "/task/1"],
    ["POST", "/kill/node/tasks"], ["POST", "/task/../token/user"],
    ["POST", "/task/%2e%2e/token/user"], ["GET", "//user"], ["GET", "/organization/"],
]


def test_proxy_refuses_what_containers_may_not_use(limited: Federation,
                                                   front: RecordingFront) -> None:
    """POST /token/user and co. get 403 from the proxy; the server only sees the allowed one."""
    # Prepare
    start = len(front.seen)
    # Execute
    answers = _result(limited, _run(limited, "proxy_probe",
                                    calls=[*REFUSED, ["GET", "/organization"]]))
    # Assert
    *refused, allowed = answers
    assert [(a["status"], a["msg"].startswith("node proxy: ")) for a in refused] == [
        (403, True)] * len(REFUSED), refused
    assert allowed["status"] == 200 and allowed["keys"] == ["data", "links"], allowed
    from_container = [(method, path) for method, path, kind in front.seen[start:]
                      if kind == "container"]
    assert from_container == [("GET", "/api/organization")]


def test_node_folder_is_private_and_runs_leave_nothing(limited: Federation) -> None:
    """The node folder is 0700; a finished job leaves no run folder and no scratch folder."""
    node_dir = limited.directory / "tasks" / limited.nodes[0].name
    scratch = node_dir / "scratch"

    def leftovers() -> list[str]:
        names = [p.name for p in node_dir.iterdir() if p.name.startswith("task-")]
        return names + ([p.name for p in scratch.iterdir()] if scratch.is_dir() else [])

    _result(limited, _run(limited, "sleep_sum", values=[1], seconds=0))
    assert node_dir.stat().st_mode & 0o777 == 0o700
    deadline = time.monotonic() + 10  # cleanup follows the final report
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers() == []
