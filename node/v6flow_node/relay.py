"""Peer-to-peer between algorithm containers of one job, relayed through the server.

Path of one connection (docs/p2p.md)::

    container A ─tcp 127.0.0.1:<local>─▶ sidecar A ─unix node.sock─▶ node A
        ─ws /relay/dial─▶ server ─ws /relay/accept─▶ node B
        ─unix sidecar.sock─▶ sidecar B ─tcp 127.0.0.1:<exposed>─▶ container B

For each run whose image ``EXPOSE``s ports (it has a sidecar of its own, see
:mod:`v6flow_node.runtime.docker`), :meth:`PeerRelay.serving` registers the ports with the server
(``POST /port``), listens on the run's ``node.sock`` for connections its container makes,
and holds the run's ``/relay/listen`` WebSocket for connections made to it; at the end it
closes all of them and deletes the ports (``DELETE /port``).

The container learns peer addresses from ``GET /vpn/algorithm/addresses`` through the node
proxy, which calls :meth:`PeerRelay.rewrite`: each peer ``(run, port)`` becomes
``127.0.0.1:<local port>`` in the caller's own namespace (its sidecar listens there), its own
ports stay ``127.0.0.1:<port>``.

Every hop authenticates: the sidecar's sockets are in a folder only the node and that
sidecar mount; the WebSockets carry the container token of the dialling or the listening run,
and the server pairs only runs of one job, on registered ports. Framing on the WebSockets:
binary messages are payload, the text message ``"eof"`` is a half-close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from v6flow.errors import ClientError
from v6flow.schemas.port import PortCreate
from v6flow_node.runtime.docker import WHITELIST_PORT, PeerEndpoint
from v6flow_node.runtime.identity import give_to_algorithm
from v6flow_node.runtime.workspace import PROXY_PORT

if TYPE_CHECKING:
    from v6flow_node.runner import NodeContext
    from v6flow_node.server_link import ServerLink

log = structlog.get_logger(__name__)

#: Local ports handed out for peer addresses (below Linux's ephemeral range).
LOCAL_PORTS = range(20000, 30000)
#: Payload bytes per WebSocket message.
CHUNK = 128 * 1024
EOF = "eof"
_LINE_LIMIT = 4096
#: ``proxy=True``: an egress proxy in the environment is used, as by the node's REST client.
_WS_OPTIONS: dict[str, Any] = {
    "compression": None, "proxy": True, "max_size": 4 * CHUNK, "max_queue": 8,
    "write_limit": 4 * CHUNK, "open_timeout": 20, "ping_interval": 20, "ping_timeout": 20,
}
_RETRY = (0.5, 1.0, 2.0, 5.0)
_MAX_UNIX_PATH = 107


def websocket_base(server_url: str) -> str:
    """``ws://…/api`` for ``http://…/api`` (``wss://`` for ``https://``)."""
    if server_url.startswith("https://"):
        return "wss://" + server_url.removeprefix("https://").rstrip("/")
    return "ws://" + server_url.removeprefix("http://").rstrip("/")


async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 ws: ClientConnection) -> tuple[int, int]:
    """Relay a byte stream over a WebSocket until both directions ended or either broke.

    Returns:
        Bytes sent and received.
    """
    counts = [0, 0]

    async def outgoing() -> None:
        while data := await reader.read(CHUNK):
            counts[0] += len(data)
            await ws.send(data)
        await ws.send(EOF)

    async def incoming() -> bool:
        """Payload into the stream; True when the peer half-closed, False when it closed."""
        async for message in ws:
            if isinstance(message, bytes):
                counts[1] += len(message)
                writer.write(message)
                await writer.drain()
            elif message == EOF:
                if writer.can_write_eof():
                    writer.write_eof()
                return True
        return False

    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(outgoing()),
                                      asyncio.create_task(incoming())]
    try:
        pending: set[asyncio.Task[Any]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t.exception() is not None or t.result() is False for t in done):
                break  # a side broke, or the peer closed: stop the other one too
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return counts[0], counts[1]


async def _line(writer: asyncio.StreamWriter, body: dict[str, Any]) -> None:
    writer.write(json.dumps(body).encode() + b"\n")
    await writer.drain()


@dataclass
class PeerRun:
    """A run of this node that takes part in peer-to-peer."""

    run_id: int
    token: str
    endpoint: PeerEndpoint
    #: ``(peer run, peer port)`` → local port, and back.
    local: dict[tuple[int, int], int] = field(default_factory=dict)
    targets: dict[int, tuple[int, int]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def exposed(self) -> set[int]:
        """The ports the run's image exposes."""
        return {p.port for p in self.endpoint.ports}

    def spawn(self, coro: Any) -> None:
        """Run a coroutine for this run; cancelled when the run ends."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class PeerRelay:
    """The node's side of the relay for all its peer-to-peer runs (one event loop)."""

    def __init__(self, *, server_url: str, link: ServerLink) -> None:
        """Prepare (no I/O until a run is served).

        Args:
            server_url: the server API base (``http(s)://…/api``).
            link: the node's link (its token registers and deletes ports).
        """
        self.base = websocket_base(server_url)
        self.link = link
        self._runs: dict[int, PeerRun] = {}
        self._by_token: dict[str, PeerRun] = {}

    # --- one run --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def serving(self, *, run_id: int, token: str,
                      endpoint: PeerEndpoint) -> AsyncIterator[None]:
        """Take part in peer-to-peer while the block runs (the run's container runs)."""
        run = PeerRun(run_id=run_id, token=token, endpoint=endpoint)
        node_sock = endpoint.folder / "node.sock"
        server: asyncio.Server | None = None
        try:
            longest = endpoint.folder / "sidecar.sock"
            if len(str(longest).encode()) > _MAX_UNIX_PATH:
                raise OSError(f"{longest} is longer than {_MAX_UNIX_PATH} bytes; choose a "
                              "shorter task_dir")
            server = await asyncio.start_unix_server(
                lambda r, w: self._dialled(run, r, w), path=str(node_sock), limit=_LINE_LIMIT)
            give_to_algorithm(node_sock, 0o600)
        except OSError as exc:
            log.error("peer-to-peer unavailable for this run", run_id=run_id, error=str(exc))
        else:
            self._runs[run_id] = run
            self._by_token[token] = run
            await self._register_ports(run)
            run.spawn(self._listen(run))
        try:
            yield
        finally:
            self._runs.pop(run_id, None)
            self._by_token.pop(token, None)
            if server is not None:
                server.close()
            for task in list(run.tasks):
                task.cancel()
            await asyncio.gather(*run.tasks, return_exceptions=True)
            if server is not None:
                await self._delete_ports(run_id)

    async def _register_ports(self, run: PeerRun) -> None:
        for port in run.endpoint.ports:
            try:
                await self.link.request("POST", "port", body=PortCreate(
                    port=port.port, run_id=run.run_id, label=port.label))
            except ClientError as exc:
                log.warning("port not registered", run_id=run.run_id, port=port.port,
                            error=str(exc))
        log.info("peer ports registered", run_id=run.run_id,
                 ports=[p.port for p in run.endpoint.ports])

    async def _delete_ports(self, run_id: int) -> None:
        try:
            await self.link.request("DELETE", "port", params={"run_id": run_id})
        except ClientError as exc:
            log.warning("ports not deleted", run_id=run_id, error=str(exc))

    def _open(self, path: str, token: str) -> Any:
        return connect(f"{self.base}{path}",
                       additional_headers={"Authorization": f"Bearer {token}"}, **_WS_OPTIONS)

    # --- connections to this run ----------------------------------------------------------
    async def _listen(self, run: PeerRun) -> None:
        """Hold the run's listen socket (reconnecting), accept every connection asked."""
        attempt = 0
        while True:
            try:
                async with self._open("/relay/listen", run.token) as ws:
                    attempt = 0
                    async for message in ws:
                        request = json.loads(message)
                        run.spawn(self._accept(run, ws, str(request["conn"]),
                                               int(request["port"])))
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (400, 401, 403):  # the run finished or its token is no more
                    log.info("relay listen refused", run_id=run.run_id, status=status)
                    return
                log.warning("relay listen refused; retrying", run_id=run.run_id,
                            status=status)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError,
                    ValueError, KeyError) as exc:
                log.warning("relay listen socket lost; reconnecting", run_id=run.run_id,
                            error=str(exc) or type(exc).__name__)
            await asyncio.sleep(_RETRY[min(attempt, len(_RETRY) - 1)])
            attempt += 1

    async def _accept(self, run: PeerRun, listener: ClientConnection, conn: str,
                      port: int) -> None:
        """Connect the sidecar to ``port`` of the container, then take the connection."""
        if port not in run.exposed:
            await self._refuse(listener, conn, f"port {port} is not exposed by this run")
            return
        try:
            reader, writer = await asyncio.open_unix_connection(
                str(run.endpoint.folder / "sidecar.sock"), limit=_LINE_LIMIT)
            await _line(writer, {"op": "connect", "port": port})
            answer = json.loads(await reader.readline() or b"{}")
        except (OSError, ValueError) as exc:
            await self._refuse(listener, conn, f"the run's sidecar is unreachable ({exc})")
            return
        if not answer.get("ok"):
            writer.close()
            await self._refuse(listener, conn, str(answer.get("error") or "refused"))
            return
        try:
            ws = await self._open(f"/relay/accept/{conn}", run.token)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            writer.close()
            log.warning("relay accept failed", run_id=run.run_id, error=str(exc))
            return
        sent, received = await splice(reader, writer, ws)
        log.debug("peer connection closed", run_id=run.run_id, port=port, sent=sent,
                  received=received)

    @staticmethod
    async def _refuse(listener: ClientConnection, conn: str, reason: str) -> None:
        log.info("peer connection refused", reason=reason)
        with contextlib.suppress(ConnectionClosed):
            await listener.send(json.dumps({"conn": conn, "error": reason}))

    # --- connections from this run --------------------------------------------------------
    async def _dialled(self, run: PeerRun, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        """The sidecar announces a connection of the container to a peer's local address."""
        try:
            local = int(json.loads(await reader.readline())["port"])
            peer_run, peer_port = run.targets[local]
        except (ValueError, KeyError, TypeError, OSError, asyncio.LimitOverrunError):
            writer.close()
            return
        path = f"/relay/dial?run_id={peer_run}&port={peer_port}"
        try:
            ws = await self._open(path, run.token)
        except InvalidStatus as exc:
            body = exc.response.body or b""
            log.info("peer connection refused by the server", run_id=run.run_id,
                     peer_run_id=peer_run, port=peer_port, status=exc.response.status_code,
                     reason=body.decode("utf-8", "replace")[:300])
            await self._answer(writer, False)
            return
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log.warning("relay dial failed", run_id=run.run_id, error=str(exc))
            await self._answer(writer, False)
            return
        if not await self._answer(writer, True):
            await ws.close()
            return
        sent, received = await splice(reader, writer, ws)
        log.debug("peer connection closed", run_id=run.run_id, peer_run_id=peer_run,
                  sent=sent, received=received)

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, ok: bool) -> bool:
        try:
            await _line(writer, {"ok": ok})
        except (ConnectionError, OSError):
            return False
        if not ok:
            writer.close()
        return True

    # --- addresses ------------------------------------------------------------------------
    async def rewrite(self, authorization: str | None, body: Any) -> Any:
        """Turn the server's peer addresses into loopback addresses of the caller.

        Args:
            authorization: the caller's ``Authorization`` header (its container token).
            body: the server's ``{"addresses": [...]}`` answer (changed in place).

        Returns:
            The body; unchanged for a caller that takes no part in peer-to-peer.
        """
        token = (authorization or "").partition(" ")[2].strip()
        run = self._by_token.get(token)
        addresses = body.get("addresses") if isinstance(body, dict) else None
        if run is None or not isinstance(addresses, list):
            return body
        for address in addresses:
            try:
                peer_run, peer_port = int(address["run_id"]), int(address["port"])
            except (KeyError, TypeError, ValueError):
                continue
            address["ip"] = "127.0.0.1"
            if peer_run != run.run_id:
                address["port"] = await self._local_port(run, peer_run, peer_port)
        return body

    async def _local_port(self, run: PeerRun, peer_run: int, peer_port: int) -> int | None:
        """The caller's local port for a peer address (its sidecar listens there)."""
        async with run.lock:
            key = (peer_run, peer_port)
            if key in run.local:
                return run.local[key]
            reserved = run.exposed | {PROXY_PORT, WHITELIST_PORT} | set(run.targets)
            for candidate in LOCAL_PORTS:
                if candidate in reserved:
                    continue
                ok, error = await self._sidecar_listen(run, candidate)
                if ok:
                    run.local[key], run.targets[candidate] = candidate, key
                    return candidate
                reserved.add(candidate)
                if len(reserved) > len(run.exposed) + 64:
                    break
            log.error("no local port for a peer address", run_id=run.run_id, error=error)
            return None

    @staticmethod
    async def _sidecar_listen(run: PeerRun, port: int) -> tuple[bool, str]:
        try:
            reader, writer = await asyncio.open_unix_connection(
                str(run.endpoint.folder / "sidecar.sock"), limit=_LINE_LIMIT)
        except OSError as exc:
            return False, f"sidecar unreachable: {exc}"
        try:
            await _line(writer, {"op": "listen", "port": port})
            answer = json.loads(await reader.readline() or b"{}")
        except (OSError, ValueError) as exc:
            return False, str(exc)
        finally:
            writer.close()
        return bool(answer.get("ok")), str(answer.get("error") or "")


@contextlib.asynccontextmanager
async def peer_session(ctx: NodeContext, *, run_id: int, token: str) -> AsyncIterator[None]:
    """Peer-to-peer for one run while its container runs (a no-op when it takes no part:
    the node disabled it, or the image exposes no port)."""
    peers = ctx.peers
    endpoint = ctx.runtime.peer_endpoint(run_id)
    if peers is None or endpoint is None:
        yield
        return
    async with peers.serving(run_id=run_id, token=token, endpoint=endpoint):
        yield
