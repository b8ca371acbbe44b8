"""TCP → unix-socket forwarder that runs inside a node's network sidecar container.

The sidecar has no network but loopback (``network_mode="none"``); algorithm containers share
its network namespace, so ``127.0.0.1:8080`` is the only thing they can reach, and every
connection there is piped to the node proxy's unix socket mounted from the host.

Stdlib only: it runs from the base image with nothing but python3 and v6flow installed.

Usage::

    python -m v6flow.sidecar --listen 127.0.0.1:8080 --socket /proxy/proxy.sock
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

#: Printed (and flushed) once the listener is bound; the node waits for this line.
READY_LINE = "v6flow-sidecar ready"

_CHUNK = 64 * 1024


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


async def _handle(socket_path: str, client_reader: asyncio.StreamReader,
                  client_writer: asyncio.StreamWriter) -> None:
    """Forward one TCP connection to the unix socket, both directions at once."""
    try:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(socket_path)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(_pipe(client_reader, upstream_writer),
                             _pipe(upstream_reader, client_writer))
    finally:
        for writer in (upstream_writer, client_writer):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def serve(listen_host: str, listen_port: int, socket_path: str, *,
                handle_signals: bool = True,
                forwards: Sequence[tuple[str, int, str]] = ()) -> None:
    """Listen on ``listen_host:listen_port`` and forward every connection until SIGTERM.

    Args:
        listen_host: address to bind (loopback inside the sidecar).
        listen_port: TCP port to bind.
        socket_path: the node proxy's unix socket.
        handle_signals: stop on SIGTERM/SIGINT (off when embedded, e.g. in tests).
        forwards: more ``(host, port, socket)`` listeners (node databases, see --forward).
    """
    server = await asyncio.start_server(
        lambda r, w: _handle(socket_path, r, w), listen_host, listen_port
    )
    extra = [await _start_forward(*forward) for forward in forwards]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(f"{READY_LINE} {listen_host}:{listen_port} -> {socket_path}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()
    for listener in extra:
        listener.close()


# --- database forwards (node/runtime/dbforward.py): more listeners, each to its own socket ---
async def _start_forward(host: str, port: int, socket_path: str) -> asyncio.Server:
    """Listen on ``host:port`` and pipe each connection to ``socket_path``."""
    return await asyncio.start_server(lambda r, w: _handle(socket_path, r, w), host, port)


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
# --- end of database forwards ------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``--listen HOST:PORT --socket PATH [--forward …]`` and serve."""
    parser = argparse.ArgumentParser(prog="python -m v6flow.sidecar", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to listen on")
    parser.add_argument("--socket", required=True, help="unix socket of the node proxy")
    parser.add_argument("--forward", action="append", default=[], type=parse_forward,
                        metavar="HOST:PORT=SOCKET", help="also forward HOST:PORT to SOCKET "
                        "(a node database; repeatable)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    asyncio.run(serve(host or "127.0.0.1", int(port), args.socket, forwards=args.forward))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised inside the sidecar container
    raise SystemExit(main())
