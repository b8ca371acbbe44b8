"""Least privilege for node containers, and why a container that hit a limit stopped.

Every algorithm and sidecar container runs as an unprivileged user (:mod:`.identity`) with
no capabilities (``cap_drop=["ALL"]``), ``no-new-privileges`` (setuid binaries do not raise
privileges), a read-only root filesystem and memory (no swap), PID and CPU limits. What stays
writable is what the contract needs: the run folder (input/output/token files), the job's
TEMPORARY_FOLDER, and a tmpfs ``/tmp`` (also ``HOME``) whose pages count against the memory
limit. ``PYTHONDONTWRITEBYTECODE`` keeps Python from trying to write ``__pycache__`` into
the image.

Docker records an OOM kill (``State.OOMKilled``) but not a refused fork. The kernel counts
those in the container's cgroup file ``pids.events``, which is gone as soon as the container
has exited, so :class:`PidLimitWatch` reads it while containers run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from v6flow_node.runtime.identity import docker_user
from v6flow_node.settings import Limits, MiB, size_text

log = structlog.get_logger(__name__)

#: The writable tmpfs inside algorithm containers (a path in the container, not the host).
CONTAINER_TMP = "/tmp"  # noqa: S108
#: Environment of sidecars; algorithm containers also get ``HOME`` (plain values: the v4
#: decoder leaves them as they are).
SIDECAR_ENV = {"PYTHONDONTWRITEBYTECODE": "1"}
RUNTIME_ENV = {**SIDECAR_ENV, "HOME": CONTAINER_TMP}
#: The network sidecar forwards bytes with one asyncio loop: small fixed limits.
SIDECAR_LIMITS = Limits(memory=128 * MiB, pids=32, cpus=1.0)
#: How often running containers' pids.events files are read (seconds).
WATCH_INTERVAL = 0.01
_CGROUP_ROOT = Path("/sys/fs/cgroup")


def container_options(limits: Limits, *, tmp: bool) -> dict[str, Any]:
    """``containers.create`` keyword arguments that harden a container.

    Args:
        limits: memory, PID and CPU limits.
        tmp: mount a tmpfs at ``/tmp`` (sized like the memory limit, mode 1777).
    """
    options: dict[str, Any] = {
        "user": docker_user(),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,  # equal: no swap on top
        "pids_limit": limits.pids,
        "nano_cpus": int(limits.cpus * 1e9),
    }
    if tmp:
        options["tmpfs"] = {CONTAINER_TMP: f"rw,nosuid,nodev,mode=1777,size={limits.memory}"}
    return options


def exit_notes(attrs: dict[str, Any], *, pid_limit_hit: bool) -> list[str]:
    """Sentences on which limit stopped an exited container (empty when none did).

    Args:
        attrs: the container's inspect data (``State``, ``HostConfig``), reloaded after exit.
        pid_limit_hit: :class:`PidLimitWatch` saw a refused fork.
    """
    state = attrs.get("State") or {}
    host = attrs.get("HostConfig") or {}
    notes = []
    if state.get("OOMKilled"):
        memory = int(host.get("Memory") or 0)
        limit = f" (limit {size_text(memory)})" if memory else ""
        notes.append(f"out of memory{limit}: the algorithm needed more memory than the node "
                     "allows (limits.memory in node.yaml), so the kernel killed a process of it")
    if pid_limit_hit:
        pids = int(host.get("PidsLimit") or 0)
        limit = f" (limit {pids})" if pids else ""
        notes.append(f"PID limit reached{limit}: the algorithm tried to run more processes "
                     "and threads at once than the node allows (limits.pids in node.yaml); "
                     "a fork or thread start was refused")
    return notes


def pids_events_file(pid: int) -> Path | None:
    """The ``pids.events`` file of the cgroup of host process ``pid`` (cgroup v1 or v2)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:  # not in our pid namespace (e.g. a node inside a container)
        return None
    candidates = []
    for line in lines:
        _hierarchy, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if "pids" in controllers.split(","):
            candidates.append(_CGROUP_ROOT / controllers / relative / "pids.events")
        elif controllers == "":
            candidates.append(_CGROUP_ROOT / relative / "pids.events")
    return next((c for c in candidates if c.is_file()), None)


def _refused_forks(path: Path) -> int | None:
    """The ``max`` counter of a pids.events file (None when the cgroup is gone)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "max":
            with contextlib.suppress(ValueError):
                return int(value)
    return 0


class PidLimitWatch:
    """Remembers which running containers had a fork refused by their PID limit.

    One daemon thread reads the ``pids.events`` file of every watched container every
    :data:`WATCH_INTERVAL` seconds and stops when none is left. Where the cgroup files are
    not visible (another pid namespace, rootless engine) nothing is watched.
    """

    def __init__(self) -> None:
        """Start empty; the thread starts with the first watched container."""
        self._lock = threading.Lock()
        self._files: dict[str, Path] = {}
        self._hit: set[str] = set()
        self._thread: threading.Thread | None = None

    def watch(self, container_id: str, pid: int) -> None:
        """Watch the container whose init process is host pid ``pid``."""
        path = pids_events_file(pid) if pid else None
        if path is None:
            log.debug("pid limit not watched: cgroup not found", container=container_id[:12])
            return
        with self._lock:
            self._files[container_id] = path
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="pid-limit-watch",
                                                daemon=True)
                self._thread.start()

    def hit(self, container_id: str) -> bool:
        """Whether the container had a fork refused; reads the file a last time if it still
        exists, and forgets the container."""
        with self._lock:
            path = self._files.pop(container_id, None)
            if path is not None and (_refused_forks(path) or 0) > 0:
                self._hit.add(container_id)
            found = container_id in self._hit
            self._hit.discard(container_id)
            return found

    def forget(self, container_id: str) -> None:
        """Stop watching a container (removed without asking :meth:`hit`)."""
        with self._lock:
            self._files.pop(container_id, None)
            self._hit.discard(container_id)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._files:
                    self._thread = None
                    return
                for container_id, path in list(self._files.items()):
                    count = _refused_forks(path)
                    if count is None:  # exited: nothing can change any more
                        del self._files[container_id]
                    elif count > 0:
                        self._hit.add(container_id)
                        del self._files[container_id]
            time.sleep(WATCH_INTERVAL)
