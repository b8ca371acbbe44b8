"""Per-run files, mounts and environment of an algorithm container (CONTRACT §1.2, §1.3).

Only the run's own folder ``<task_dir>/<node>/task-<9-digit id>/`` is mounted, at
``/mnt/data/task-<id>/`` (v4 mounted all runs' folders at ``/mnt/data``). File databases are
bind-mounted read-only at ``/mnt/<label>/<basename>``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.runtime.identity import give_to_algorithm
from node.settings import Database, NodeSettings
from v6flow.wire import encode_env_value

#: Where the per-job scratch volume is mounted.
TEMPORARY_FOLDER = "/mnt/tmp"
#: What the algorithm sees as the proxy: its (shared) loopback, served by the sidecar.
PROXY_HOST = "http://127.0.0.1"
PROXY_PORT = 8080


def run_folder_name(run_id: int) -> str:
    """``task-000000042`` for run 42 (9 digits, as v4)."""
    return f"task-{run_id:09d}"


@dataclass(frozen=True)
class Workspace:
    """The host folder of one run and where it appears inside the container."""

    host_dir: Path
    container_dir: str

    @property
    def output_path(self) -> Path:
        """Host path of OUTPUT_FILE."""
        return self.host_dir / "output"

    def read_output(self) -> bytes:
        """The raw bytes the algorithm wrote (empty when it wrote nothing)."""
        try:
            return self.output_path.read_bytes()
        except FileNotFoundError:
            return b""

    def remove(self) -> None:
        """Delete the run folder."""
        shutil.rmtree(self.host_dir, ignore_errors=True)


def create_workspace(base: Path, run_id: int, *, input_bytes: bytes, token: str) -> Workspace:
    """Write input, empty output and token files of one run.

    The folder and its files belong to the algorithm container's user (mode ``0700``; input
    and token ``0400``, output ``0600``), and the node's folder ``base`` is ``0700``, so no
    other user of the host can read the token or write the output.

    Args:
        base: the node's folder ``<task_dir>/<node>``.
        run_id: the run id.
        input_bytes: the decoded run input.
        token: the container JWT.

    Returns:
        The workspace.
    """
    name = run_folder_name(run_id)
    host_dir = base / name
    if host_dir.exists():
        shutil.rmtree(host_dir)
    host_dir.mkdir(parents=True)
    base.chmod(0o700)
    files = {"input": (input_bytes, 0o400), "output": (b"", 0o600),
             "token": (token.encode("ascii"), 0o400)}
    for file_name, (content, mode) in files.items():
        path = host_dir / file_name
        path.write_bytes(content)
        give_to_algorithm(path, mode)
    give_to_algorithm(host_dir, 0o700)
    return Workspace(host_dir=host_dir, container_dir=f"/mnt/data/{name}")


def existing_workspace(base: Path, run_id: int) -> Workspace:
    """The workspace of a run whose container already exists (adopted after a restart)."""
    name = run_folder_name(run_id)
    return Workspace(host_dir=base / name, container_dir=f"/mnt/data/{name}")


def database_mount(db: Database) -> str:
    """Path of a file database inside the container."""
    return f"/mnt/{db.label}/{db.uri.name}"


def database_volumes(databases: list[Database]) -> dict[str, dict[str, str]]:
    """Read-only bind mounts of the node's file databases (docker-py ``volumes`` form)."""
    return {str(db.uri): {"bind": database_mount(db), "mode": "ro"} for db in databases}


def _task_db_parameters(entry: dict[str, Any]) -> dict[str, Any]:
    """The per-database parameters of a task entry: ``parameters`` (dict or JSON) or inline."""
    params = entry.get("parameters")
    if isinstance(params, str):
        try:
            params = json.loads(params) if params else {}
        except ValueError:
            params = {}
    if isinstance(params, dict):
        return params
    return {k: v for k, v in entry.items() if k not in ("label", "parameters", "type")}


def build_environment(*, workspace: Workspace, settings: NodeSettings,
                      task_databases: list[dict[str, Any]]) -> dict[str, str]:
    """The container environment, every value encoded like the reference node.

    Args:
        workspace: the run's workspace.
        settings: node settings (databases and ``algorithm_env``).
        task_databases: ``task.databases`` as the server returns it.

    Returns:
        Env mapping (``algorithm_env`` merged last, ``PKG_NAME`` never set).
    """
    folder = workspace.container_dir
    env: dict[str, str] = {
        "INPUT_FILE": f"{folder}/input",
        "OUTPUT_FILE": f"{folder}/output",
        "TOKEN_FILE": f"{folder}/token",
        "TEMPORARY_FOLDER": TEMPORARY_FOLDER,
        "HOST": PROXY_HOST,
        "PORT": str(PROXY_PORT),
        "API_PATH": "",
    }
    requested = [str(entry.get("label", "")) for entry in task_databases
                 if isinstance(entry, dict)]
    env["USER_REQUESTED_DATABASE_LABELS"] = ",".join(requested)
    for db in settings.databases:
        env[f"{db.label.upper()}_DATABASE_URI"] = database_mount(db)
        env[f"{db.label.upper()}_DATABASE_TYPE"] = db.type.value
    for entry in task_databases:
        if not isinstance(entry, dict) or not entry.get("label"):
            continue
        label = str(entry["label"]).upper()
        params = _task_db_parameters(entry)
        if params.get("query"):
            env[f"{label}_QUERY"] = str(params["query"])
        if params.get("sheet_name"):
            env[f"{label}_SHEET_NAME"] = str(params["sheet_name"])
        if params.get("preprocessing"):
            env[f"{label}_PREPROCESSING"] = json.dumps(params["preprocessing"])
    env["DB_LABELS"] = ",".join(db.label for db in settings.databases)
    env.update(settings.algorithm_env)
    env.pop("PKG_NAME", None)
    return {key: encode_env_value(value) for key, value in env.items()}
