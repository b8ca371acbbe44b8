"""Database servers for containers that have no network: one forward per server, via the sidecar.

An algorithm container sees only loopback (it shares its job's sidecar's network namespace;
:mod:`v6flow_node.runtime.docker`). To let it reach a ``sql`` or ``sparql`` server of the node, and
nothing else, the node plans one *forward* per distinct ``host:port`` of its databases:

- the node listens on a unix socket ``<proxy dir>/db-<n>.sock`` and pipes every connection to
  that one ``host:port`` (resolved and connected from the node, like v4's node network);
- each job's sidecar listens on a loopback address of its own, ``127.100.0.<n>:<port>`` (the
  server's own port), and pipes to the socket (``python -m v6flow.sidecar --forward``);
- inside the container the database's URI keeps its host name, which the sidecar's
  ``/etc/hosts`` maps to that loopback address, so TLS names still match; a host given as an
  address (or ``localhost``) is replaced by the loopback address in ``<LABEL>_DATABASE_URI``.

Nothing else becomes reachable: a forward connects to exactly one configured server, and the
container still has no interface but ``lo``. A server the node cannot reach is logged here (no
credentials: a forward never sees more than bytes) and answered at once, so the algorithm
fails with the reason instead of hanging: an HTTP ``502`` for a ``sparql`` server, a FATAL
PostgreSQL error for a PostgreSQL one (libpq shows its text), a closed connection otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from v6flow.databases import POSTGRES_SCHEMES, DatabaseType, dialect, is_ip_literal, with_host
from v6flow_node.runtime.identity import give_to_algorithm
from v6flow_node.settings import Database
from v6flow_node.streams import pipe

log = structlog.get_logger(__name__)

#: Loopback addresses of forwards inside containers: ``127.100.0.1``, ``127.100.0.2``, …
#: (the node proxy is at ``127.0.0.1:8080``; this range never collides with it).
FORWARD_NET = (127, 100)
#: Host names a container already resolves to its own loopback: replaced, not mapped.
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
#: Seconds the node waits for a server to accept a connection.
CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Forward:
    """One ``host:port`` the node forwards containers to."""

    index: int
    host: str
    port: int
    address: str
    labels: tuple[str, ...]
    protocol: str

    @property
    def socket_name(self) -> str:
        """File name of the node's unix socket for this forward."""
        return f"db-{self.index}.sock"


@dataclass(frozen=True)
class ForwardPlan:
    """Every forward of a node, and how containers name the servers."""

    forwards: tuple[Forward, ...] = ()

    def sidecar_args(self, socket_dir: str) -> list[str]:
        """``--forward ADDRESS:PORT=SOCKET`` arguments of ``python -m v6flow.sidecar``."""
        args: list[str] = []
        for fwd in self.forwards:
            args += ["--forward", f"{fwd.address}:{fwd.port}={socket_dir}/{fwd.socket_name}"]
        return args

    def sidecar_hosts(self) -> dict[str, str]:
        """``extra_hosts`` of the sidecar: each server's host name → its loopback address."""
        return {fwd.host: fwd.address for fwd in self.forwards if _keeps_name(fwd.host)}

    def container_uri(self, db: Database) -> str:
        """``<LABEL>_DATABASE_URI`` of a server database (its password already removed).

        A host name stays (the sidecar maps it); an address or ``localhost`` becomes the
        forward's loopback address. The port stays as written.
        """
        server = db.server
        if server is None or _keeps_name(server[0]):
            return db.uri
        address = next(f.address for f in self.forwards if f.host == server[0])
        return with_host(db.uri, address, urlsplit(db.uri).port)


def _keeps_name(host: str) -> bool:
    """True when the container keeps the host name (mapped in the sidecar's /etc/hosts)."""
    return not is_ip_literal(host) and host.lower() not in _LOOPBACK_NAMES


def plan_forwards(databases: list[Database]) -> ForwardPlan:
    """One forward per distinct ``host:port`` of the node's server databases.

    Hosts get loopback addresses in the order they first appear (``127.100.0.1`` …), and one
    host keeps one address for all its ports, since ``/etc/hosts`` maps a name once.
    """
    addresses: dict[str, str] = {}
    found: dict[tuple[str, int], list[Database]] = {}
    for db in databases:
        if db.server is None:
            continue
        host, port = db.server
        if host not in addresses:
            n = len(addresses)
            addresses[host] = _address(n)
        found.setdefault((host, port), []).append(db)
    forwards = tuple(
        Forward(index=i, host=host, port=port, address=addresses[host],
                labels=tuple(db.label for db in dbs), protocol=_protocol(dbs))
        for i, ((host, port), dbs) in enumerate(found.items(), start=1))
    return ForwardPlan(forwards)


def _protocol(databases: list[Database]) -> str:
    """``http`` (sparql), ``postgresql`` or ``tcp``: how a forward tells a client it failed."""
    if all(db.type is DatabaseType.SPARQL for db in databases):
        return "http"
    if all(dialect(db.uri) in POSTGRES_SCHEMES for db in databases):
        return "postgresql"
    return "tcp"


def _address(n: int) -> str:
    """The ``n``-th (0-based) forward address: ``127.100.0.1``, …, ``127.100.0.254``,
    ``127.100.1.1``, … (never a ``.0`` or ``.255``)."""
    return f"{FORWARD_NET[0]}.{FORWARD_NET[1]}.{n // 254}.{n % 254 + 1}"


class DatabaseForwarder:
    """The node side of a :class:`ForwardPlan`: unix sockets piped to the servers."""

    def __init__(self, plan: ForwardPlan, socket_dir: Path, *,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        """Prepare (nothing listens before :meth:`start`).

        Args:
            plan: the forwards.
            socket_dir: folder the sidecars mount (the proxy's folder).
            connect_timeout: seconds to wait for a server to accept.
        """
        self.plan = plan
        self.socket_dir = socket_dir
        self.connect_timeout = connect_timeout
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        """Listen on every forward's socket (owned by the container user, mode 0600).

        Raises:
            OSError: a socket could not be bound.
        """
        if not self.plan.forwards:
            return
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        for fwd in self.plan.forwards:
            path = self.socket_dir / fwd.socket_name
            path.unlink(missing_ok=True)
            server = await asyncio.start_unix_server(partial(self._handle, fwd), path=str(path))
            self._servers.append(server)
            give_to_algorithm(path, 0o600)
            log.info("database forward listening", databases=list(fwd.labels),
                     server=f"{fwd.host}:{fwd.port}", container_address=f"{fwd.address}:"
                     f"{fwd.port}")

    async def stop(self) -> None:
        """Stop listening and remove the sockets (open connections are closed)."""
        for server in self._servers:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=2)
        self._servers.clear()
        for fwd in self.plan.forwards:
            (self.socket_dir / fwd.socket_name).unlink(missing_ok=True)

    async def _handle(self, fwd: Forward, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(fwd.host, fwd.port), timeout=self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {self.connect_timeout:g} s"
            log.warning("database server unreachable", databases=list(fwd.labels),
                        server=f"{fwd.host}:{fwd.port}", error=reason)
            message = (f"v6flow node: cannot reach the database server of "
                       f"{', '.join(fwd.labels)} at {fwd.host}:{fwd.port}: {reason}")
            # a client that hangs up or sends garbage only loses the explanation
            with contextlib.suppress(OSError, TimeoutError, EOFError):
                if fwd.protocol == "http":
                    await _answer_http(reader, writer, message)
                elif fwd.protocol == "postgresql":
                    await _answer_postgres(reader, writer, message)
            writer.close()
            return
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for w in (up_writer, writer):
                w.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await w.wait_closed()


async def _answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       message: str) -> None:
    """Answer an HTTP client (a sparql loader) ``502`` with ``message``."""
    body = f"{message}\n".encode()
    head = (f"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    async with asyncio.timeout(2):  # read the request away: closing then resets nothing
        while await reader.read(_CHUNK):
            pass


#: First-message codes a PostgreSQL client may send before its startup message.
_PG_SSL_REQUEST, _PG_GSSENC_REQUEST = 80877103, 80877104


async def _answer_postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           message: str) -> None:
    """Answer a PostgreSQL client's startup message with a FATAL ``ErrorResponse``.

    SSL and GSS encryption requests are declined first (libpq ignores errors sent during
    that exchange), so libpq (psycopg, psycopg2: v4 algorithms too) shows ``message``;
    with ``sslmode=require`` it reports that the server refused SSL instead.
    """
    async with asyncio.timeout(5):
        for _message in range(3):
            length = int.from_bytes(await reader.readexactly(4), "big")
            if not 8 <= length <= 10_000:
                return
            body = await reader.readexactly(length - 4)
            if int.from_bytes(body[:4], "big") not in (_PG_SSL_REQUEST, _PG_GSSENC_REQUEST):
                break
            writer.write(b"N")
            await writer.drain()
    fields = b"".join(code + text.encode() + b"\0" for code, text in (
        (b"S", "FATAL"), (b"V", "FATAL"), (b"C", "08001"), (b"M", message)))
    payload = fields + b"\0"
    writer.write(b"E" + (len(payload) + 4).to_bytes(4, "big") + payload)
    await writer.drain()
