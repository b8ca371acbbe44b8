"""The peer relay: pairs a dialling run's WebSocket with a listening run's, then splices them.

Three WebSockets, each opened by a node with the container token of one of its runs
(:mod:`v6flow_server.api.routes.relay` checks the token and :mod:`v6flow_server.services.ports`
the rules):

- ``/relay/listen``: a node holds one per run whose image exposes ports. The hub sends it
  ``{"conn": <id>, "port": <n>}`` for every connection asked of that run; the node answers
  ``{"conn": <id>, "error": <why>}`` when nothing listens on the port.
- ``/relay/dial?run_id=&port=``: a node opens one per TCP connection its run's container
  makes to a peer address. The hub asks the target run's listener for an ``accept``, waits
  for it (:data:`ACCEPT_TIMEOUT`) and splices the two sockets.
- ``/relay/accept/<conn>``: the listening node's half of one connection.

On a spliced pair every binary message is payload and is passed on as it is; the text
message ``"eof"`` means "the sender will write no more" (TCP half-close) and is passed on
too; a close of either socket closes the other. Backpressure is the WebSockets' own: the
server reads the next message of one side only after the other side took the previous one,
so at most a message per direction is buffered here.

Pairing lives in this process (like the in-process event bus): with several replicas, both
halves of a connection must reach the same one (route ``/api/relay`` to one replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from v6flow_server.errors import ConflictError, ServerDomainError, TooManyRequestsError
from v6flow_server.services.ports import RelayTarget

log = structlog.get_logger(__name__)

#: Seconds the hub waits for the listening node to accept a connection.
ACCEPT_TIMEOUT = 10.0
#: Connections being set up or spliced at once, per dialling run and in total.
MAX_PER_RUN = 256
MAX_TOTAL = 4096
EOF = "eof"


class PeerUnreachable(ServerDomainError):
    """The listening node did not accept the connection (502 to the dialling node)."""

    status_code = 502


class Socket(Protocol):
    """What the hub needs of a WebSocket (a Starlette ``WebSocket`` is one)."""

    async def receive(self) -> Any:
        """The next ASGI message (``websocket.receive`` or ``websocket.disconnect``)."""

    async def send(self, message: Any) -> None:
        """Send one ASGI message."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the socket."""


@dataclass
class _Listener:
    socket: Socket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ask(self, conn: str, port: int) -> None:
        async with self.lock:
            await self.socket.send({"type": "websocket.send",
                                    "text": json.dumps({"conn": conn, "port": port})})


@dataclass
class _Pending:
    run_id: int
    accepted: asyncio.Future[Socket]
    done: asyncio.Event = field(default_factory=asyncio.Event)


class RelayHub:
    """Listeners by run, connections waiting to be accepted, and the splices (one loop)."""

    def __init__(self, *, accept_timeout: float = ACCEPT_TIMEOUT) -> None:
        """Start empty."""
        self._listeners: dict[int, _Listener] = {}
        self._pending: dict[str, _Pending] = {}
        self._per_run: dict[tuple[int, int], int] = {}
        self._total = 0
        self.accept_timeout = accept_timeout

    def listening(self, run_id: int) -> bool:
        """Whether the node of ``run_id`` holds its listen socket."""
        return run_id in self._listeners

    @contextlib.asynccontextmanager
    async def listen(self, run_id: int, socket: Socket) -> AsyncIterator[None]:
        """Register ``socket`` as the listen socket of ``run_id`` while the block runs.

        A second listen socket of the same run replaces the first (a node that reconnected).
        """
        old = self._listeners.get(run_id)
        listener = self._listeners[run_id] = _Listener(socket)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.socket.close(code=4409, reason="replaced by a newer listen socket")
        log.info("relay listener joined", run_id=run_id)
        try:
            yield
        finally:
            if self._listeners.get(run_id) is listener:
                del self._listeners[run_id]
            log.info("relay listener left", run_id=run_id)

    def refused(self, message: str) -> None:
        """A listening node could not accept ``conn`` (its text message on the listen socket)."""
        try:
            body = json.loads(message)
            conn, error = str(body["conn"]), str(body.get("error") or "refused")
        except (ValueError, KeyError, TypeError):
            return
        pending = self._pending.get(conn)
        if pending is not None and not pending.accepted.done():
            pending.accepted.set_exception(PeerUnreachable(f"the peer refused: {error[:300]}"))

    @contextlib.asynccontextmanager
    async def connect(self, target: RelayTarget, *, dialler: tuple[int, int]
                      ) -> AsyncIterator[Socket]:
        """Ask the listener of ``target`` for a connection and yield its accepted socket.

        Args:
            target: the run and port to reach (already authorized).
            dialler: ``(task_id, organization_id)`` of the dialling run (for its quota).

        Raises:
            ConflictError: the target's node holds no listen socket (run not started yet,
                or its node is not connected).
            TooManyRequestsError: the dialling run (or the server) has too many connections.
            PeerUnreachable: the listening node refused, or did not accept in time.
        """
        listener = self._listeners.get(target.run_id)
        if listener is None:
            raise ConflictError(f"Run id={target.run_id} is not accepting connections (its "
                                "node has not opened its relay, or the run is not running)")
        key = dialler
        if self._per_run.get(key, 0) >= MAX_PER_RUN or self._total >= MAX_TOTAL:
            raise TooManyRequestsError(f"At most {MAX_PER_RUN} relayed connections per run",
                                       retry_after=1)
        self._per_run[key] = self._per_run.get(key, 0) + 1
        self._total += 1
        conn = secrets.token_urlsafe(18)
        pending = self._pending[conn] = _Pending(
            run_id=target.run_id, accepted=asyncio.get_running_loop().create_future())
        try:
            try:
                await listener.ask(conn, target.port)
                peer = await asyncio.wait_for(asyncio.shield(pending.accepted),
                                              timeout=self.accept_timeout)
            except TimeoutError as exc:
                raise PeerUnreachable(f"run id={target.run_id} did not accept within "
                                      f"{self.accept_timeout:g} s") from exc
            except (OSError, RuntimeError) as exc:  # the listen socket broke
                raise PeerUnreachable(f"run id={target.run_id} is not reachable") from exc
            finally:
                self._pending.pop(conn, None)
            yield peer
        finally:
            pending.done.set()
            if not pending.accepted.done():
                pending.accepted.cancel()
            self._total -= 1
            left = self._per_run.get(key, 1) - 1
            if left > 0:
                self._per_run[key] = left
            else:
                self._per_run.pop(key, None)

    def claim(self, conn: str, run_id: int) -> _Pending:
        """The connection ``conn`` waiting for ``run_id``'s node to accept it.

        Raises:
            ConflictError: no such connection waits for this run (wrong run, unknown or
                expired id).
        """
        pending = self._pending.get(conn)
        if pending is None or pending.run_id != run_id or pending.accepted.done():
            raise ConflictError("No connection with this id waits for this run")
        return pending

    @staticmethod
    async def splice(one: Socket, other: Socket) -> tuple[int, int]:
        """Pass messages both ways until either side closes; returns bytes each way."""
        counts = [0, 0]

        async def pump(source: Socket, sink: Socket, index: int) -> None:
            while True:
                message = await source.receive()
                if message["type"] != "websocket.receive":
                    return
                data = message.get("bytes")
                if data is not None:
                    counts[index] += len(data)
                    await sink.send({"type": "websocket.send", "bytes": data})
                elif message.get("text") is not None:
                    await sink.send({"type": "websocket.send", "text": message["text"]})

        pumps = [asyncio.create_task(pump(one, other, 0)),
                 asyncio.create_task(pump(other, one, 1))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for socket in (one, other):
                with contextlib.suppress(Exception):
                    await socket.close(code=1000)
        return counts[0], counts[1]
