"""Process memory read from ``/proc`` (and a free port), shared by the memory benchmarks."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_kb(pid: int, key: str) -> int:
    """A ``kB`` figure of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def status_mb(pid: int, key: str) -> float:
    """The same figure in MB."""
    return status_kb(pid, key) / 1024


class PeakMeter:
    """Peak RSS growth of one process over a block of work."""

    def __init__(self, pid: int) -> None:
        """Measure process ``pid``."""
        self.pid = pid
        self.before = 0

    def start(self) -> None:
        """Reset the peak to the current RSS and remember it."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.before = status_kb(self.pid, "VmRSS")

    def growth_mb(self) -> float:
        """How far the peak rose above the RSS at :meth:`start`, in MB."""
        return (status_kb(self.pid, "VmHWM") - self.before) / 1024

    def peak_mb(self) -> float:
        """The peak RSS since :meth:`start`, in MB."""
        return status_kb(self.pid, "VmHWM") / 1024
