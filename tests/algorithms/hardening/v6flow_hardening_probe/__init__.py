"""Algorithms that probe a node's container hardening (image ``v6flow-test/hardening``).

``fork_forever`` and ``allocate_forever`` misbehave on purpose, to show that the node's PID
and memory limits end them; ``privileges`` reports what the container may do;
``proxy_probe`` sends raw requests to the node proxy with the container token.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def fork_forever() -> None:
    """Start child processes that sleep, one after another, without end (a fork bomb)."""
    while True:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)


def allocate_forever() -> None:
    """Fill memory 16 MiB at a time without end."""
    chunks = []
    while True:
        chunks.append(b"\x01" * (16 << 20))


def sleep_sum(values: list[float], seconds: float) -> float:
    """Sleep ``seconds``, then return the sum of ``values`` (a well-behaved neighbour)."""
    time.sleep(float(seconds))
    return float(sum(values))


def _try_write(path: Path, *, append: bool = False) -> str:
    """``"ok"`` when ``path`` can be written (and read back), else the errno name."""
    try:
        if append:  # keep the content: opening for writing is the test
            with path.open("ab"):
                pass
            return "ok"
        path.write_bytes(b"probe")
        return "ok" if path.read_bytes() == b"probe" else "read back differs"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))


def _first(*paths: str) -> str | None:
    for path in paths:
        try:
            return Path(path).read_text().strip()
        except OSError:
            continue
    return None


def privileges() -> dict[str, Any]:
    """Identity, capabilities, no_new_privs, what is writable and the cgroup limits seen."""
    status = dict(line.split(":\t", 1) for line in
                  Path("/proc/self/status").read_text().splitlines() if ":\t" in line)
    home = os.environ.get("HOME", "")
    return {
        "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
        "cap_eff": status["CapEff"].strip(), "cap_prm": status["CapPrm"].strip(),
        "cap_bnd": status["CapBnd"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
        "home": home,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "write": {
            "root": _try_write(Path("/probe")),
            "etc": _try_write(Path("/etc/probe")),
            "site_packages": _try_write(Path(os.__file__).parent / "probe"),
            "output": _try_write(Path(os.environ["OUTPUT_FILE"]), append=True),
            "temporary_folder": _try_write(Path(os.environ["TEMPORARY_FOLDER"]) / "probe"),
            "tmp": _try_write(Path("/tmp/probe")),
            "home": _try_write(Path(home) / "probe-home"),
        },
        "memory_limit": _first("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                               "/sys/fs/cgroup/memory.max"),
        "pids_limit": _first("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
        "cpu_quota": _first("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max"),
        "cpu_period": _first("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    }


def proxy_probe(calls: list[list[str]]) -> list[dict[str, Any]]:
    """Send each ``[method, raw path]`` to HOST:PORT as is, with the container token.

    Returns:
        Per call: the status and the ``msg`` of the JSON answer (or its keys).
    """
    host = urlsplit(os.environ["HOST"]).hostname or "127.0.0.1"
    token = Path(os.environ["TOKEN_FILE"]).read_text().strip()
    out = []
    for method, path in calls:
        connection = http.client.HTTPConnection(host, int(os.environ["PORT"]), timeout=20)
        body = json.dumps({"username": "root", "password": "x"}) if method != "GET" else None
        connection.request(method, path, body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = {"text": raw[:200].decode("utf-8", "replace")}
        summary = answer.get("msg") if isinstance(answer, dict) else None
        keys = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
        out.append({"method": method, "path": path, "status": response.status,
                    "msg": summary, "keys": keys})
    return out
