"""Where a node keeps its things, and how ``v6flow node list`` knows a node is running.

Node configuration files live in one folder, the first of:

1. ``--config-dir`` (``node new``/``node list``), or the variable ``V6FLOW_NODE_CONFIG_DIR``;
2. ``$XDG_CONFIG_HOME/v6flow/nodes``;
3. ``~/.config/v6flow/nodes``.

A running node is recognised by its **pid file**: ``v6flow node start`` writes
``<task_dir>/<node name>/node.pid`` (JSON: pid, config file, node id, server, log file, start
time) once the server has accepted its key, and deletes it when it stops. A node counts as
running when that pid is alive and is a ``v6flow … node start`` process (so a stale file
left by a killed node, or a recycled pid, reads as "stopped"). Containers are not used for
this: an idle node has none.

Inside ``<task_dir>/<node name>/`` (the daemon's layout, :mod:`v6flow_node.runtime.workspace`):
``task-<run id, 9 digits>/`` per run (input, output, token), ``proxy/proxy.sock`` (what
algorithm containers reach as their proxy) and ``node.pid``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Environment variable naming the node configuration folder.
CONFIG_DIR_ENV = "V6FLOW_NODE_CONFIG_DIR"
PID_FILE = "node.pid"
PROXY_SOCKET = "proxy/proxy.sock"
RUN_FOLDER = "task-<run id, 9 digits>"


def default_config_dir() -> Path:
    """``$V6FLOW_NODE_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/v6flow/nodes``, else
    ``~/.config/v6flow/nodes``."""
    explicit = os.environ.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "v6flow" / "nodes"


def default_task_dir() -> Path:
    """``$XDG_DATA_HOME/v6flow/tasks`` (or ``~/.local/share/v6flow/tasks``): every node of
    this user gets its own folder inside."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "v6flow" / "tasks"


def node_folder_name(name: str) -> str:
    """The node's folder (and container) name: ``v6flow_node.daemon.docker_safe`` of its name."""
    from v6flow_node.daemon import docker_safe

    return docker_safe(name)


@dataclass(frozen=True)
class PidRecord:
    """The content of a node's pid file."""

    pid: int
    config: str
    name: str
    node_id: int | None
    server_url: str
    started_at: str
    log_file: str | None
    path: Path

    @property
    def alive(self) -> bool:
        """The pid is a live ``v6flow … node start`` process."""
        return process_is_node(self.pid)

    def as_json(self) -> dict[str, Any]:
        """The record without its own path."""
        return {"pid": self.pid, "config": self.config, "name": self.name,
                "node_id": self.node_id, "server_url": self.server_url,
                "started_at": self.started_at, "log_file": self.log_file}


def process_is_node(pid: int) -> bool:
    """Whether ``pid`` is alive and (where ``/proc`` tells) runs ``node start``."""
    try:
        with contextlib.suppress(PermissionError):  # alive, owned by another user
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc/self").exists()  # no /proc on this system: trust the signal
    return b"node" in args and b"start" in args


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(pid=int(data["pid"]), config=str(data["config"]),
                         name=str(data["name"]), node_id=data.get("node_id"),
                         server_url=str(data.get("server_url", "")),
                         started_at=str(data.get("started_at", "")),
                         log_file=data.get("log_file"), path=path)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_files(task_dir: Path) -> list[PidRecord]:
    """Every readable pid file under ``task_dir/*/``."""
    try:
        folders = sorted(p for p in task_dir.iterdir() if p.is_dir())
    except OSError:
        return []
    records = (read_pid_file(folder / PID_FILE) for folder in folders)
    return [record for record in records if record is not None]


def find_node_process(config: Path, task_dir: Path, name: str | None) -> PidRecord | None:
    """The live node process started from ``config`` (or, failing that, named ``name``)."""
    wanted = str(config.expanduser().resolve())
    records = [r for r in pid_files(task_dir) if r.alive]
    by_config = [r for r in records if r.config == wanted]
    if by_config:
        return by_config[0]
    if name is not None:
        folder = task_dir / node_folder_name(name)
        return next((r for r in records if r.path.parent == folder), None)
    return None


class AlreadyRunning(Exception):
    """Another live process holds this node's pid file."""

    def __init__(self, record: PidRecord) -> None:
        super().__init__(f"node {record.name!r} is already running (pid {record.pid}, "
                         f"started {record.started_at} from {record.config})")
        self.record = record


def write_pid_file(node_dir: Path, *, config: Path, name: str, node_id: int | None,
                   server_url: str, log_file: Path | None) -> Path:
    """Claim ``node_dir/node.pid`` for this process.

    Raises:
        AlreadyRunning: a live node process holds it.
        OSError: the folder cannot be written.
    """
    node_dir.mkdir(parents=True, exist_ok=True)
    path = node_dir / PID_FILE
    body = json.dumps({
        "pid": os.getpid(), "config": str(config.expanduser().resolve()), "name": name,
        "node_id": node_id, "server_url": server_url,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "log_file": str(log_file.resolve()) if log_file else None}) + "\n"
    for _attempt in (1, 2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            existing = read_pid_file(path)
            if existing is not None and existing.pid != os.getpid() and existing.alive:
                raise AlreadyRunning(existing) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
        return path
    raise FileExistsError(f"{path} keeps reappearing")  # pragma: no cover - a racing start


def remove_pid_file(path: Path) -> None:
    """Delete the pid file if it is still this process's."""
    record = read_pid_file(path)
    if record is not None and record.pid == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


@dataclass(frozen=True)
class NodeFiles:
    """The places of one node (``node_dir`` is None while its name is known only to the
    server and it never ran)."""

    config: Path
    task_dir: Path
    node_dir: Path | None
    log_file: str | None

    def as_json(self) -> dict[str, Any]:
        """Every place, as strings (patterns for the per-run folders)."""
        folder = str(self.node_dir) if self.node_dir else f"{self.task_dir}/<node name>"
        return {"config": str(self.config), "task_dir": str(self.task_dir),
                "node_dir": folder, "run_folders": f"{folder}/{RUN_FOLDER}/",
                "proxy_socket": f"{folder}/{PROXY_SOCKET}", "pid_file": f"{folder}/{PID_FILE}",
                "log": self.log_file}


def node_files(config: Path, task_dir: Path, name: str | None) -> NodeFiles:
    """Where the node of ``config`` keeps its things (its pid file fills in a missing name)."""
    running = find_node_process(config, task_dir, name)
    if name is None and running is None:
        wanted = str(config.expanduser().resolve())
        running = next((r for r in pid_files(task_dir) if r.config == wanted), None)
    folder_name = node_folder_name(name) if name else (running.name if running else None)
    return NodeFiles(config=config.expanduser().resolve(), task_dir=task_dir,
                     node_dir=task_dir / folder_name if folder_name else None,
                     log_file=running.log_file if running else None)
