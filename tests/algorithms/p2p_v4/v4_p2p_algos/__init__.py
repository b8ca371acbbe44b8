"""A vantage6 v4 algorithm that knows nothing of v6flow: its partials talk over ``client.vpn``.

``central(client, size, organizations)`` starts ``exchange`` at two organizations and
reports both sides. In ``exchange``, the run at the lower organization id listens on the
port the image EXPOSEs (8888, ``LABEL p8888="exchange"``); the other finds it with
``client.vpn.get_sibling_addresses()`` and sends ``size`` bytes (an 8-byte length first,
then a half-close); the listener answers their SHA-256. Only the v4 tools and the standard
library are used, as in any v4 VPN algorithm.
"""

import hashlib
import socket
import struct
import time

from vantage6.algorithm.tools.decorators import algorithm_client

PORT = 8888
LABEL = "exchange"


def payload(size, seed):
    """The deterministic bytes the sender sends."""
    return hashlib.shake_256(seed.encode()).digest(int(size))


@algorithm_client
def central(client, size, organizations, seed="v4-vpn"):
    """Start the exchange at two organizations, wait, and say whether it happened."""
    task = client.task.create(
        input_={"method": "exchange", "kwargs": {"size": size, "seed": seed}},
        organizations=organizations,
        name="v4 vpn exchange",
        description="subtask of the v4 p2p test algorithm",
    )
    results = client.wait_for_results(task_id=task.get("id"))
    by_role = {r["role"]: r for r in results}
    listener, sender = by_role.get("listener"), by_role.get("sender")
    exchanged = bool(listener and sender and
                     listener["sha256"] == sender["sha256"] == sender["reply"])
    return {"exchanged": exchanged, "results": results, "subtask_id": task.get("id")}


def _sibling(client, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [a for a in client.vpn.get_sibling_addresses() if a.get("label") == LABEL]
        if found:
            return found[0]
        time.sleep(0.25)
    raise TimeoutError("the sibling's address never appeared")


def _exact(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(min(size - len(data), 1 << 18))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data


@algorithm_client
def exchange(client, size, seed="v4-vpn", timeout=120):
    """Listen or send, depending on which sibling this is."""
    deadline = time.time() + timeout
    server = socket.create_server(("0.0.0.0", PORT))
    server.settimeout(1.0)
    try:
        peer = _sibling(client, timeout)
        me = client.organization_id
        if me < peer["organization_id"]:
            while time.time() < deadline:
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(60)
                    try:
                        (length,) = struct.unpack(">Q", _exact(conn, 8))
                        digest = hashlib.sha256(_exact(conn, length)).hexdigest()
                        conn.sendall(digest.encode())
                        conn.shutdown(socket.SHUT_WR)
                    except (OSError, struct.error):
                        continue
                return {"role": "listener", "organization_id": me, "received": length,
                        "sha256": digest, "peer": peer}
            raise TimeoutError("nothing arrived")
        data = payload(size, seed)
        last = None
        while time.time() < deadline:
            try:
                with socket.create_connection((peer["ip"], peer["port"]), timeout=60) as conn:
                    conn.sendall(struct.pack(">Q", len(data)) + data)
                    conn.shutdown(socket.SHUT_WR)
                    reply = b""
                    while True:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
                if reply:
                    return {"role": "sender", "organization_id": me, "sent": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "reply": reply.decode(), "peer": peer}
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.25)
        raise TimeoutError(f"could not deliver: {last}")
    finally:
        server.close()
