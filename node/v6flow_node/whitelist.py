"""The whitelist proxy: what algorithm containers may reach beyond the node (v4's squid).

A forward HTTP proxy on a unix socket in the node's proxy folder; the network sidecar of
every job forwards ``127.0.0.1:3128`` to it, and containers get ``HTTP_PROXY``/
``HTTPS_PROXY`` (and the lower-case forms) pointing there, with ``NO_PROXY`` for loopback.

- ``CONNECT host:port`` (https and any other TCP protocol): a tunnel, once allowed.
- ``GET http://host:port/path`` (absolute URI, plain http; any method): the request is sent
  to the host in origin form with ``Connection: close``, and the answer streamed back.

:class:`WhitelistPolicy` decides (``whitelist`` in node.yaml): the port must be listed, and
the host a listed domain (or a name under a ``.domain``), a listed address or network, or a
name whose addresses all are listed. Names resolve on the node (containers have no DNS);
the connection goes to the very addresses that were checked. Anything else gets
``403 Forbidden`` with a sentence saying why, and a ``whitelist refused`` node log line (at
most one a second; the count of the others is in the next).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from v6flow_node.errors import ProxyError
from v6flow_node.runtime.identity import give_to_algorithm
from v6flow_node.settings import Whitelist
from v6flow_node.streams import pipe

log = structlog.get_logger(__name__)

#: The longest request head accepted (request line and headers).
MAX_HEAD = 32 * 1024
#: Connections through the proxy at once, from all containers of the node (503 beyond).
MAX_CONNECTIONS = 512
_HEAD_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 10.0
_HOP_HEADERS = frozenset({"connection", "proxy-connection", "keep-alive", "proxy-authorization",
                          "proxy-authenticate", "te", "trailer", "upgrade"})
_MAX_UNIX_PATH = 107
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Decision:
    """Whether a destination may be reached, where to connect, and why not."""

    allowed: bool
    addresses: tuple[str, ...] = ()
    reason: str = ""
    status: int = 403


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


class WhitelistPolicy:
    """The node's whitelist as a decision on ``(host, port)``."""

    def __init__(self, whitelist: Whitelist) -> None:
        """Keep the lists (already validated and normalised by the settings)."""
        self.domains = tuple(whitelist.domains)
        self.networks = tuple(ipaddress.ip_network(n) for n in whitelist.ips)
        self.ports = frozenset(whitelist.ports)

    def domain_listed(self, host: str) -> bool:
        """``host`` is a listed domain, or a name under a listed ``.domain``."""
        name = host.lower().rstrip(".")
        return any(name == d or (d.startswith(".") and (name.endswith(d) or name == d[1:]))
                   for d in self.domains)

    def address_listed(self, address: IPAddress) -> bool:
        """``address`` is in a listed network (or is a listed address)."""
        return any(address in network for network in self.networks)

    async def decide(self, host: str, port: int) -> Decision:
        """Check ``host:port``, resolving a name on the node when needed."""
        if port not in self.ports:
            return Decision(False, reason=f"port {port} is not on this node's whitelist "
                                          f"(whitelist.ports)")
        literal = _ip(host)
        if literal is not None:
            if self.address_listed(literal):
                return Decision(True, (str(literal),))
            return Decision(False, reason=f"address {literal} is not on this node's whitelist "
                                          "(whitelist.ips)")
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            if not self.domain_listed(host):
                return Decision(False, reason=f"host {host} is not on this node's whitelist "
                                              "(whitelist.domains)")
            return Decision(False, reason=f"the node cannot resolve {host}: {exc}", status=502)
        if self.domain_listed(host):
            return Decision(True, tuple(str(a) for a in addresses))
        if addresses and all(self.address_listed(a) for a in addresses):
            return Decision(True, tuple(str(a) for a in addresses))
        return Decision(False, reason=f"host {host} is not on this node's whitelist "
                                      "(whitelist.domains, or whitelist.ips for all of its "
                                      "addresses)")


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of a name (the node's resolver), without duplicates, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, IPAddress] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        seen.setdefault(str(address), address)
    return list(seen.values())


class _RefusalLog:
    """One ``whitelist refused`` line a second at most (an algorithm may loop)."""

    def __init__(self) -> None:
        self._last = -1.0
        self._unlogged = 0

    def note(self, host: str, port: int, reason: str) -> None:
        now = time.monotonic()
        if now - self._last < 1.0:
            self._unlogged += 1
            return
        log.warning("whitelist refused", host=host[:255], port=port, reason=reason,
                    refused_unlogged_before=self._unlogged)
        self._last, self._unlogged = now, 0


def _answer(status: int, reason: str) -> bytes:
    phrases = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large",
               502: "Bad Gateway", 503: "Service Unavailable"}
    body = f"v6flow node whitelist proxy: {reason}\n".encode()
    return (f"HTTP/1.1 {status} {phrases.get(status, 'Error')}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def _split_host_port(authority: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` → ``(host, port)``.

    Raises:
        ValueError: not an authority.
    """
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = authority.rpartition(":") if ":" in authority else (
            authority, "", "")
    port = int(port_text) if port_text else default_port
    if not host or not 1 <= port <= 65535:
        raise ValueError(authority)
    return host, port


async def _connect(addresses: Iterable[str], port: int
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first of ``addresses`` that answers.

    Raises:
        OSError: none did.
    """
    last: OSError = OSError("no address")
    for address in addresses:
        try:
            return await asyncio.wait_for(asyncio.open_connection(address, port),
                                          timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            last = exc if isinstance(exc, OSError) else OSError(f"{address}: timed out")
    raise last


class WhitelistProxy:
    """Serves the whitelist on a unix socket inside the running event loop."""

    def __init__(self, *, whitelist: Whitelist, socket_path: Path) -> None:
        """Prepare (not start) the proxy."""
        self.policy = WhitelistPolicy(whitelist)
        self.socket_path = socket_path
        self._server: asyncio.Server | None = None
        self._refusals = _RefusalLog()
        self._open = 0

    async def start(self) -> None:
        """Bind the socket (only the containers' user may connect).

        Raises:
            ProxyError: the socket path is too long, or binding failed.
        """
        if len(str(self.socket_path).encode()) > _MAX_UNIX_PATH:
            raise ProxyError(f"whitelist socket path {self.socket_path} is longer than "
                             f"{_MAX_UNIX_PATH} bytes; choose a shorter task_dir")
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        try:
            self._server = await asyncio.start_unix_server(
                self._handle, path=str(self.socket_path), limit=MAX_HEAD)
        except OSError as exc:
            raise ProxyError(f"whitelist proxy could not listen: {exc}") from exc
        give_to_algorithm(self.socket_path, 0o600)
        log.info("whitelist proxy listening", socket=str(self.socket_path),
                 domains=list(self.policy.domains),
                 ips=[str(n) for n in self.policy.networks], ports=sorted(self.policy.ports))

    async def stop(self) -> None:
        """Stop serving and remove the socket."""
        if self._server is not None:
            self._server.close()
        self.socket_path.unlink(missing_ok=True)

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, reason: str,
                      host: str = "", port: int = 0) -> None:
        if status == 403:
            self._refusals.note(host, port, reason)
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(_answer(status, reason))
            await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= MAX_CONNECTIONS:
            await self._refuse(writer, 503, f"more than {MAX_CONNECTIONS} connections at once")
            return
        self._open += 1
        try:
            await self._serve(reader, writer)
        finally:
            self._open -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=_HEAD_TIMEOUT)
        except asyncio.LimitOverrunError:
            await self._refuse(writer, 431, "the request head is too large")
            return
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            await self._refuse(writer, 400, "not an HTTP request")
            return
        method, target, version = parts
        try:
            if method == "CONNECT":
                host, port = _split_host_port(target, 443)
            else:
                url = urlsplit(target)
                if url.scheme != "http" or not url.hostname:
                    raise ValueError(target)
                host, port = url.hostname, url.port or 80
        except ValueError:
            await self._refuse(writer, 400, "use CONNECT host:port, or an absolute http:// URI")
            return
        decision = await self.policy.decide(host, port)
        if not decision.allowed:
            await self._refuse(writer, decision.status, decision.reason, host, port)
            return
        try:
            upstream = await _connect(decision.addresses, port)
        except OSError as exc:
            await self._refuse(writer, 502, f"cannot connect to {host}:{port} ({exc})")
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream[1].write(_origin_form(method, target, version, lines[1:], host, port))
        await _splice((reader, writer), upstream, tunnel=method == "CONNECT")


def _origin_form(method: str, target: str, version: str, header_lines: list[str],
                 host: str, port: int) -> bytes:
    """The request head as the origin server must see it (origin form, no hop headers)."""
    url = urlsplit(target)
    path = url.path or "/"
    if url.query:
        path += f"?{url.query}"
    headers = [line for line in header_lines if line and
               line.partition(":")[0].strip().lower() not in _HOP_HEADERS]
    if not any(line.lower().startswith("host:") for line in headers):
        headers.insert(0, f"Host: {host}" + (f":{port}" if port != 80 else ""))
    headers.append("Connection: close")
    return (f"{method} {path} {version}\r\n" + "\r\n".join(headers) + "\r\n\r\n").encode(
        "latin-1")


async def _splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                  upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter], *,
                  tunnel: bool) -> None:
    """Pipe both ways; a tunnel ends when both directions did, a plain request when the
    answer did (the origin closes after it: ``Connection: close``)."""
    up = asyncio.create_task(pipe(client[0], upstream[1]))
    down = asyncio.create_task(pipe(upstream[0], client[1]))
    try:
        if tunnel:
            await asyncio.gather(up, down)
        else:
            await down
    finally:
        up.cancel()
        down.cancel()
        for writer in (client[1], upstream[1]):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
