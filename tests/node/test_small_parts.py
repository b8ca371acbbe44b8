"""Exit-code registry, node-name sanitising, the sidecar forwarder and the open-run listing
(no Docker needed)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from v6flow import sidecar, wire
from v6flow.client import Client
from v6flow.schemas import RunOut, TaskOut
from v6flow_node.daemon import docker_safe
from v6flow_node.exit_codes import HELP, ExitCode
from v6flow_node.server_link import OPEN_RUN_INCLUDES, ServerLink


def test_every_exit_code_has_help() -> None:
    """Each exit code of the node explains itself."""
    assert set(HELP) == set(ExitCode)
    assert all(text.strip() for text in HELP.values())


@pytest.mark.parametrize(("name", "expected"), [
    ("hospital-a", "hospital-a"), ("Org 1 - Collab Node", "Org-1---Collab-Node"),
    ("_x", "n_x"), ("***", "node"),
])
def test_docker_safe_names(name: str, expected: str) -> None:
    """Server node names become valid container-name parts."""
    assert docker_safe(name) == expected


async def test_sidecar_forwards_tcp_to_unix_socket(tmp_path: Path) -> None:
    """Bytes sent to the sidecar's TCP port reach the unix socket and the answer comes back."""
    # Prepare: a unix echo server and a free loopback port
    socket_path = tmp_path / "proxy.sock"

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(1024)
        writer.write(b"echo:" + data)
        await writer.drain()
        writer.close()

    unix_server = await asyncio.start_unix_server(echo, str(socket_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    forwarder = asyncio.create_task(sidecar.serve("127.0.0.1", port, str(socket_path),
                                                  handle_signals=False))
    # Execute
    for _ in range(100):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.02)
    writer.write(b"hello")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    # Assert
    assert answer == b"echo:hello"
    writer.close()
    forwarder.cancel()
    unix_server.close()


async def test_open_runs_ask_for_task_and_input_and_read_them_typed(server: Any) -> None:
    """The node lists its open runs with include=task and include=input, as RunOut/TaskOut."""
    # Prepare: an organization with a node and a researcher, and one task for it
    tag = uuid.uuid4().hex[:8]
    with Client(server.url, username="root", password=server.root_password) as root:
        org = root.organization.create(f"org-{tag}")
        collaboration = root.collaboration.create(f"collab-{tag}", [org.id])
        node = root.node.create(collaboration.id, org.id, name=f"node-{tag}")
        role = root.role.list(name="Researcher")[0]
        password = f"Pw-{uuid.uuid4().hex}"
        root.user.create(f"user-{tag}", password, org.id, roles=[role.id])
    with Client(server.url, username=f"user-{tag}", password=password) as user:
        task = user.task.create(collaboration.id, [org.id], "v6flow-test/x:1", "echo",
                                args=[tag])
    asked: list[httpx.URL] = []

    async def record(request: httpx.Request) -> None:
        asked.append(request.url)

    link = ServerLink(server_url=server.url, api_key=node.api_key,
                      client=httpx.AsyncClient(event_hooks={"request": [record]}))
    # Execute
    try:
        await link.login()
        runs = await link.open_runs(task.id)
    finally:
        await link.aclose()
    # Assert
    (run,) = runs
    listing = next(url for url in asked if url.path.endswith("/run"))
    assert sorted(listing.params.get_list("include")) == sorted(OPEN_RUN_INCLUDES)
    assert {"task", "input"} <= set(OPEN_RUN_INCLUDES)
    assert isinstance(run, RunOut) and isinstance(run.task, TaskOut)
    assert run.task.id == task.id and run.task.image == task.image
    assert wire.input_from_wire(run.input or "") == wire.make_input("echo", [tag], {})
