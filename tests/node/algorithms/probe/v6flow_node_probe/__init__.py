"""Functions the node tests run in containers (image ``v6flow-test/node-probe:latest``)."""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def connect(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """Try a TCP connection to ``host:port`` (loopback only) and say what happened."""
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("the probe only ever targets loopback addresses")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return {"connected": True, "error": None}
    except OSError as exc:
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"}


def network() -> dict[str, Any]:
    """Interfaces this container has, and whether the node proxy answers at HOST:PORT."""
    net = Path("/sys/class/net")
    base = f"{os.environ['HOST']}:{os.environ['PORT']}{os.environ['API_PATH']}"
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            proxy = response.status
    except OSError as exc:
        proxy = getattr(exc, "code", None) or str(exc)
    return {"interfaces": sorted(p.name for p in net.iterdir()), "proxy_status": proxy,
            "env": {k: os.environ[k] for k in ("HOST", "PORT", "API_PATH", "INPUT_FILE",
                                               "TEMPORARY_FOLDER", "DEFAULT_DATABASE_URI")}}


def ticker(count: int, interval: float) -> int:
    """Print ``tick <i>`` lines, ``interval`` seconds apart, then return ``count``."""
    for i in range(int(count)):
        print(f"tick {i}", flush=True)
        sys.stderr.flush()
        time.sleep(float(interval))
    return int(count)


def mounts() -> dict[str, Any]:
    """What the container sees under /mnt/data and whether the database mount is writable."""
    data = sorted(p.name for p in Path("/mnt/data").iterdir())
    uri = Path(os.environ["DEFAULT_DATABASE_URI"])
    try:
        uri.open("a").close()
        writable = True
    except OSError:
        writable = False
    return {"data": data, "database_exists": uri.is_file(), "database_writable": writable}
