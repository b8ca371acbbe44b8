"""Peer-to-peer and whitelist probes, on v6flow's own AlgorithmClient (image v6flow-test/p2p).

The image EXPOSEs 8888 (label ``exchange``) and 9999 (label ``bench``). Of two sibling runs,
the one at the lower organization id listens and the other connects (:func:`exchange`,
:func:`bench`); :func:`fetch` goes through the node's whitelist proxy.

Exchange protocol: the sender writes an 8-byte big-endian length and the payload, then
half-closes; the listener answers the payload's SHA-256 (hex) and closes. A connection that
breaks before the whole payload arrived is dropped and the next one is awaited.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from v6flow.algorithm import AlgorithmClient, algorithm_client

EXCHANGE_PORT = 8888
BENCH_PORT = 9999
_CHUNK = 256 * 1024


def payload(size: int, seed: str) -> bytes:
    """The deterministic bytes a sender sends (the test recomputes them on its own)."""
    return hashlib.shake_256(seed.encode()).digest(int(size))


def _listen(port: int) -> socket.socket:
    server = socket.create_server(("127.0.0.1", port), backlog=128)
    server.settimeout(1.0)
    return server


def _peer(client: AlgorithmClient, label: str, timeout: float) -> dict[str, Any]:
    """The sibling's address with ``label`` (waits until its node registered it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [a for a in client.vpn.get_sibling_addresses() if a["label"] == label]
        if found:
            return found[0]
        time.sleep(0.2)
    raise TimeoutError(f"no sibling address labelled {label!r} after {timeout} s")


def _read_exact(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, _CHUNK))
        if not chunk:
            raise ConnectionError("closed early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(server: socket.socket, deadline: float) -> dict[str, Any]:
    """Accept until one connection delivers a whole payload; answer its digest."""
    dropped = 0
    while time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(60)
            try:
                (size,) = struct.unpack(">Q", _read_exact(conn, 8))
                digest, left = hashlib.sha256(), size
                while left:
                    chunk = conn.recv(min(left, _CHUNK))
                    if not chunk:
                        raise ConnectionError("closed early")
                    digest.update(chunk)
                    left -= len(chunk)
                conn.sendall(digest.hexdigest().encode() + b"\n")
                conn.shutdown(socket.SHUT_WR)
                return {"role": "listener", "received": size, "sha256": digest.hexdigest(),
                        "dropped_connections": dropped}
            except (OSError, struct.error):
                dropped += 1
    raise TimeoutError("no complete payload arrived")


def _send(host: str, port: int, data: bytes, deadline: float) -> dict[str, Any]:
    """Connect (retrying while the peer is not there yet) and send; read the digest."""
    attempts, last = 0, ""
    while time.monotonic() < deadline:
        attempts += 1
        try:
            with socket.create_connection((host, port), timeout=60) as conn:
                conn.sendall(struct.pack(">Q", len(data)) + data)
                conn.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := conn.recv(4096):
                    reply += chunk
            if reply.strip():
                return {"role": "sender", "sent": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "reply": reply.decode().strip(), "attempts": attempts}
            last = "empty reply"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise TimeoutError(f"could not deliver to {host}:{port} ({last})")


@algorithm_client
def exchange(client: AlgorithmClient, size: int, seed: str = "v6flow",
             timeout: float = 120) -> dict[str, Any]:
    """One sibling listens on 8888, the other sends ``size`` bytes to it (see module doc)."""
    deadline = time.monotonic() + timeout
    server = _listen(EXCHANGE_PORT)
    try:
        peer = _peer(client, "exchange", timeout)
        own = client.vpn.get_own_address()
        seen = {"own": own, "peer": peer}
        if client.organization_id < peer["organization_id"]:
            return {**_receive(server, deadline), **seen}
        return {**_send(peer["ip"], peer["port"], payload(size, seed), deadline), **seen}
    finally:
        server.close()


@algorithm_client
def central_exchange(client: AlgorithmClient, size: int, organizations: list[int],
                     seed: str = "v6flow") -> dict[str, Any]:
    """Run :func:`exchange` at two organizations (a subtask) and report both sides."""
    task = client.task.create({"method": "exchange", "kwargs": {"size": size, "seed": seed}},
                              organizations, name="p2p exchange")
    results = client.wait_for_results(task["id"], timeout=300)
    return {"subtask_id": task["id"], "results": results}


@algorithm_client
def addresses(client: AlgorithmClient, **options: Any) -> list[dict[str, Any]]:
    """What ``client.vpn.get_addresses(**options)`` answers in this container."""
    return client.vpn.get_addresses(**options)


@algorithm_client
def hold(client: AlgorithmClient, seconds: float) -> dict[str, Any]:
    """Listen on both exposed ports for ``seconds`` (echoing), then report own addresses
    and the network interfaces the container has."""
    servers = [_listen(EXCHANGE_PORT), _listen(BENCH_PORT)]
    stop = time.monotonic() + float(seconds)
    threads = [threading.Thread(target=_echo_until, args=(s, stop), daemon=True)
               for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"own": client.vpn.get_own_address(), "interfaces": sorted(os.listdir("/sys/class/net"))}


def _echo_until(server: socket.socket, stop: float) -> None:
    while time.monotonic() < stop:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()
    server.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(_CHUNK):
                conn.sendall(data)
        except OSError:
            pass


@algorithm_client
def probe_ports(client: AlgorithmClient, ports: list[int]) -> dict[str, str]:
    """Try each loopback port in this container: ``open``, ``refused`` or ``reset``."""
    out = {}
    for port in ports:
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as conn:
                conn.sendall(b"x")
                conn.settimeout(5)
                out[str(port)] = "open" if conn.recv(1) else "closed"
        except ConnectionRefusedError:
            out[str(port)] = "refused"
        except OSError as exc:
            out[str(port)] = f"{type(exc).__name__}"
    return out


@algorithm_client
def dial_missing(client: AlgorithmClient, timeout: float = 60) -> dict[str, Any]:
    """Connect to the sibling's port 9999, on which nothing listens: what happens."""
    peer = _peer(client, "bench", timeout)
    if client.organization_id < peer["organization_id"]:
        time.sleep(5)  # stay alive (its node holds its relay) while the other one dials
        return {"role": "idle"}
    try:
        with socket.create_connection((peer["ip"], peer["port"]), timeout=30) as conn:
            conn.sendall(b"hello")
            conn.settimeout(30)
            data = conn.recv(10)
        return {"role": "dialler", "outcome": "data" if data else "eof"}
    except OSError as exc:
        return {"role": "dialler", "outcome": type(exc).__name__}


@algorithm_client
def concurrent(client: AlgorithmClient, connections: int, size: int,
               timeout: float = 120) -> dict[str, Any]:
    """Many connections at once: the lower sibling echoes, the higher checks every echo."""
    deadline = time.monotonic() + timeout
    server = _listen(BENCH_PORT)
    peer = _peer(client, "bench", timeout)
    if client.organization_id < peer["organization_id"]:
        _echo_until(server, min(deadline, time.monotonic() + 60))
        return {"role": "echo"}
    server.close()
    results: list[bool] = []

    def one(index: int) -> None:
        data = payload(size, f"conn-{index}")
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((peer["ip"], peer["port"]), timeout=60) as conn:
                    sender = threading.Thread(target=conn.sendall, args=(data,))
                    sender.start()
                    got = _read_exact(conn, len(data))
                    sender.join()
                results.append(got == data)
                return
            except OSError:
                time.sleep(0.2)
        results.append(False)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(int(connections))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"role": "checker", "ok": sum(results), "connections": len(results)}


# --- benchmark ----------------------------------------------------------------------------
def _bench_serve(server: socket.socket, deadline: float) -> None:
    """Serve benchmark connections until a 'Q' one: P echo, C one echo, T sink + digest."""
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                mode = conn.recv(1)
                if mode == b"P":
                    while data := conn.recv(_CHUNK):
                        conn.sendall(data)
                elif mode == b"C":
                    conn.sendall(conn.recv(1))
                elif mode == b"T":
                    (size,) = struct.unpack(">Q", _read_exact(conn, 8))
                    digest, left = hashlib.sha256(), size
                    while left:
                        chunk = conn.recv(min(left, _CHUNK))
                        if not chunk:
                            return
                        digest.update(chunk)
                        left -= len(chunk)
                    conn.sendall(digest.hexdigest().encode())
                elif mode == b"Q":
                    stop.set()
            except OSError:
                pass

    while not stop.is_set() and time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def _connect(host: str, port: int, mode: bytes, deadline: float) -> socket.socket:
    """A benchmark connection in ``mode`` (retried until the peer answers a probe)."""
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=60)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(mode)
            return conn
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _measure(host: str, port: int, rounds: int, setups: int, megabytes: int,
             deadline: float) -> dict[str, Any]:
    # Warm-up: wait until the listener answers an echo.
    while True:
        try:
            with _connect(host, port, b"P", deadline) as conn:
                conn.sendall(b"w")
                if conn.recv(1) == b"w":
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    rtts = []
    with _connect(host, port, b"P", deadline) as conn:
        for _ in range(rounds):
            began = time.perf_counter()
            conn.sendall(b"x")
            conn.recv(1)
            rtts.append((time.perf_counter() - began) * 1000)
    setup = []
    for _ in range(setups):
        began = time.perf_counter()
        with _connect(host, port, b"C", deadline) as conn:
            conn.sendall(b"y")
            conn.recv(1)
        setup.append((time.perf_counter() - began) * 1000)
    data = payload(megabytes * 1_000_000, "bench")
    expected = hashlib.sha256(data).hexdigest()
    began = time.perf_counter()
    with _connect(host, port, b"T", deadline) as conn:
        conn.sendall(struct.pack(">Q", len(data)))
        view = memoryview(data)
        for offset in range(0, len(data), _CHUNK):
            conn.sendall(view[offset:offset + _CHUNK])
        answer = conn.recv(64).decode()
    seconds = time.perf_counter() - began
    with _connect(host, port, b"Q", deadline):
        pass
    return {"rtt_ms": rtts, "setup_ms": setup, "bytes": len(data), "seconds": seconds,
            "digest_ok": answer == expected}


@algorithm_client
def bench(client: AlgorithmClient, rounds: int = 1000, setups: int = 20,
          megabytes: int = 100, timeout: float = 600) -> dict[str, Any]:
    """Round trips, connection set-ups and a bulk transfer between two siblings."""
    deadline = time.monotonic() + timeout
    server = _listen(BENCH_PORT)
    try:
        peer = _peer(client, "bench", timeout)
        if client.organization_id < peer["organization_id"]:
            _bench_serve(server, deadline)
            return {"role": "server"}
        return {"role": "client", **_measure(peer["ip"], peer["port"], int(rounds),
                                             int(setups), int(megabytes), deadline)}
    finally:
        server.close()


# --- whitelist ----------------------------------------------------------------------------
@algorithm_client
def fetch(client: AlgorithmClient, url: str, tunnel: bool = False,
          ignore_no_proxy: bool = False) -> dict[str, Any]:
    """GET ``url`` the way a client library does (urllib, honouring ``HTTP_PROXY`` and
    ``NO_PROXY``); ``ignore_no_proxy``: send it to the proxy whatever the host; ``tunnel``:
    through a CONNECT tunnel (what https clients do).

    Returns the status and body (the proxy's refusal included); ``env`` shows the proxy
    variables.
    """
    env = {k: os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                           "https_proxy", "NO_PROXY", "no_proxy")}
    try:
        if tunnel or ignore_no_proxy:
            status, body = _raw(url, tunnel=tunnel)
        else:
            with urllib.request.urlopen(url, timeout=30) as response:
                status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    except OSError as exc:
        status, body = 0, f"{type(exc).__name__}: {exc}"
    return {"status": status, "body": body, "env": env}


def _read_all(conn: socket.socket) -> bytes:
    answer = b""
    while chunk := conn.recv(4096):
        answer += chunk
    return answer


def _status_and_body(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


def _raw(url: str, *, tunnel: bool) -> tuple[int, str]:
    """A plain HTTP/1.0 request to the proxy: absolute URI, or inside a CONNECT tunnel."""
    parsed = urllib.parse.urlsplit(url)
    proxy = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
    path = parsed.path or "/"
    with socket.create_connection((proxy.hostname, proxy.port), timeout=30) as conn:
        if not tunnel:
            conn.sendall(f"GET {url} HTTP/1.0\r\nHost: {parsed.netloc}\r\n\r\n".encode())
            return _status_and_body(_read_all(conn))
        conn.sendall(f"CONNECT {parsed.hostname}:{parsed.port} HTTP/1.1\r\n"
                     f"Host: {parsed.hostname}:{parsed.port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            return status, (head + _read_all(conn)).partition(b"\r\n\r\n")[2].decode()
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: {parsed.netloc}\r\n\r\n".encode())
        return _status_and_body(_read_all(conn))


def resolve(name: str) -> str:
    """Resolve ``name`` inside the container (it has no DNS of its own)."""
    try:
        return socket.gethostbyname(name)
    except OSError as exc:
        return f"{type(exc).__name__}"
