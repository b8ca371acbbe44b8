"""The forwarder that runs inside a node's network sidecar container.

The sidecar has no network but loopback (``network_mode="none"``); algorithm containers share
its network namespace, so what it listens on is all they can reach:

- ``--forward 127.0.0.1:8080=/proxy/proxy.sock`` (repeatable; ``--listen``/``--socket`` is
  the one-forward form): every TCP connection to the address is piped to a unix socket of the
  node (its API proxy, its whitelist proxy).
- ``--p2p /p2p`` (a per-run folder of the node, read-write): peer connections. The sidecar
  binds ``/p2p/sidecar.sock``; on it the node sends one JSON line per connection:

  - ``{"op": "listen", "port": N}``: listen on ``127.0.0.1:N`` (a peer's local address);
    each connection to it is announced to the node on ``/p2p/node.sock`` with
    ``{"port": N}``, and piped once the node answers ``{"ok": true}`` (the node relays it
    to the peer). ``{"ok": false}`` resets the connection (RST).
  - ``{"op": "connect", "port": N}``: connect to ``127.0.0.1:N`` (the algorithm's own
    exposed port) and pipe the node's connection to it, after an ``{"ok": true}`` line.

  Answers are one JSON line: ``{"ok": true}`` or ``{"ok": false, "error": "..."}``.

Half-closes pass through (``write_eof``). Stdlib only: it runs from the base image with
nothing but python3 and v6flow installed.

Usage::

    python -m v6flow.sidecar --forward 127.0.0.1:8080=/proxy/proxy.sock [--p2p /p2p]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Printed (and flushed) once every listener is bound; the node waits for this line.
READY_LINE = "v6flow-sidecar ready"

_CHUNK = 256 * 1024
#: The longest control line accepted on ``sidecar.sock`` / from ``node.sock``.
_LINE_LIMIT = 4096
_CONNECT_TIMEOUT = 10.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from ``reader`` to ``writer`` until EOF, then half-close ``writer``."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _splice(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                  b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Pipe both directions at once, then close both writers."""
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for writer in (a[1], b[1]):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a TCP connection with RST, so the algorithm sees "connection reset"."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _handle(socket_path: str, client_reader: asyncio.StreamReader,
                  client_writer: asyncio.StreamWriter) -> None:
    """Forward one TCP connection to the unix socket, both directions at once."""
    try:
        upstream = await asyncio.open_unix_connection(socket_path)
    except OSError:
        client_writer.close()
        return
    await _splice((client_reader, client_writer), upstream)


async def _answer(writer: asyncio.StreamWriter, ok: bool, error: str = "") -> None:
    body: dict[str, Any] = {"ok": True} if ok else {"ok": False, "error": error}
    writer.write(json.dumps(body).encode() + b"\n")
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()


class PeerPorts:
    """The peer-to-peer part: local addresses of peers, and connections into own ports."""

    def __init__(self, folder: str) -> None:
        """Serve on ``<folder>/sidecar.sock``; reach the node at ``<folder>/node.sock``."""
        self.control_path = str(Path(folder) / "sidecar.sock")
        self.node_path = str(Path(folder) / "node.sock")
        self.listeners: dict[int, asyncio.Server] = {}

    async def start(self) -> asyncio.Server:
        """Bind the control socket."""
        Path(self.control_path).unlink(missing_ok=True)
        return await asyncio.start_unix_server(self._control, path=self.control_path,
                                               limit=_LINE_LIMIT)

    async def _control(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            op, port = str(request["op"]), int(request["port"])
            if not 1 <= port <= 65535:
                raise ValueError(port)
        except (ValueError, KeyError, TypeError, asyncio.LimitOverrunError):
            await _answer(writer, False, "bad request")
            writer.close()
            return
        if op == "listen":
            await self._listen(port, writer)
            writer.close()
        elif op == "connect":
            await self._connect(port, reader, writer)
        else:
            await _answer(writer, False, f"unknown op {op[:40]!r}")
            writer.close()

    async def _listen(self, port: int, writer: asyncio.StreamWriter) -> None:
        if port not in self.listeners:
            try:
                self.listeners[port] = await asyncio.start_server(
                    lambda r, w: self._outbound(port, r, w), "127.0.0.1", port)
            except OSError as exc:
                await _answer(writer, False, f"cannot listen on 127.0.0.1:{port}: {exc}")
                return
        await _answer(writer, True)

    async def _connect(self, port: int, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            target = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                            timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            await _answer(writer, False, f"nothing accepts connections on port {port} ({exc})")
            writer.close()
            return
        await _answer(writer, True)
        await _splice((reader, writer), target)

    async def _outbound(self, port: int, client_reader: asyncio.StreamReader,
                        client_writer: asyncio.StreamWriter) -> None:
        """An algorithm connected to a peer's local address: let the node relay it."""
        try:
            node = await asyncio.open_unix_connection(self.node_path, limit=_LINE_LIMIT)
            node[1].write(json.dumps({"port": port}).encode() + b"\n")
            await node[1].drain()
            answer = json.loads(await node[0].readline() or b"{}")
        except (OSError, ValueError, asyncio.LimitOverrunError):
            _reset(client_writer)
            return
        if not answer.get("ok"):
            node[1].close()
            _reset(client_writer)
            return
        await _splice((client_reader, client_writer), node)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(listen_host: str | None = None, listen_port: int | None = None,
                socket_path: str | None = None, *, handle_signals: bool = True,
                forwards: Sequence[tuple[str, int, str]] = (),
                p2p: str | None = None) -> None:
    """Listen and forward until SIGTERM.

    Args:
        listen_host: address of the one-forward form (loopback inside the sidecar).
        listen_port: its TCP port.
        socket_path: its unix socket (the node proxy).
        handle_signals: stop on SIGTERM/SIGINT (off when embedded, e.g. in tests).
        forwards: more ``(host, port, unix socket)`` forwards.
        p2p: folder of the peer-to-peer sockets (none: no peer connections).
    """
    every = list(forwards)
    if listen_port is not None and socket_path is not None:
        every.insert(0, (listen_host or "127.0.0.1", listen_port, socket_path))
    servers = [await asyncio.start_server(functools.partial(_handle, path), host, port)
               for host, port, path in every]
    if p2p is not None:
        servers.append(await PeerPorts(p2p).start())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    routes = ", ".join(f"{host}:{port} -> {path}" for host, port, path in every)
    sys.stdout.write(f"{READY_LINE} {routes}{' p2p ' + p2p if p2p else ''}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()


def parse_forward(text: str) -> tuple[str, int, str]:
    """``127.100.0.1:5432=/proxy/db-1.sock`` → ``("127.100.0.1", 5432, "/proxy/db-1.sock")``.

    Raises:
        argparse.ArgumentTypeError: not ``HOST:PORT=SOCKET``.
    """
    address, _, socket_path = text.partition("=")
    host, _, port = address.rpartition(":")
    if not (host and port.isdigit() and socket_path):
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT=SOCKET")
    return host, int(port), socket_path


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse the forwards and serve."""
    parser = argparse.ArgumentParser(prog="python -m v6flow.sidecar", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:8080",
                        help="HOST:PORT forwarded to --socket")
    parser.add_argument("--socket", help="unix socket of the node proxy")
    parser.add_argument("--forward", action="append", default=[], type=parse_forward,
                        metavar="HOST:PORT=SOCKET",
                        help="another TCP address forwarded to a unix socket (a node "
                             "database; repeatable)")
    parser.add_argument("--p2p", help="folder of the peer-to-peer sockets")
    args = parser.parse_args(argv)
    host, port = _address(args.listen)
    asyncio.run(serve(host, port if args.socket else None, args.socket, forwards=args.forward,
                      p2p=args.p2p))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised inside the sidecar container
    raise SystemExit(main())
