"""Exit-code registry, node-name sanitising and the sidecar forwarder (no Docker needed)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from node.daemon import docker_safe
from node.exit_codes import HELP, ExitCode
from v6flow import sidecar


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
