"""Per-run files, mounts and environment of an algorithm container (CONTRACT §1.2, §1.3).

Only the run's own folder ``<task_dir>/<node>/task-<9-digit id>/`` is mounted, at
``/mnt/data/task-<id>/`` (v4 mounted all runs' folders at ``/mnt/data``). File databases
(csv, parquet, excel, SQLite) are bind-mounted read-only at ``/mnt/<label>/<basename>``;
server databases (sql, sparql) are reached through the node's forwards
(:mod:`v6flow_node.runtime.dbforward`); ``other`` URIs are passed through. docs/databases.md.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from v6flow.databases import POSTGRES_SCHEMES, dialect, is_sqlite_url
from v6flow.wire import encode_env_value
from v6flow_node.runtime.dbforward import ForwardPlan, plan_forwards
from v6flow_node.runtime.identity import give_to_algorithm
from v6flow_node.settings import Database, NodeSettings

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


def database_mount(db: Database) -> str | None:
    """Path of a file database inside the container (None for servers and ``other``)."""
    file = db.file
    return f"/mnt/{db.label}/{file.name}" if file is not None else None


def database_volumes(databases: list[Database]) -> dict[str, dict[str, str]]:
    """Read-only bind mounts of the node's file databases (docker-py ``volumes`` form)."""
    volumes: dict[str, dict[str, str]] = {}
    for db in databases:
        mount = database_mount(db)
        if db.file is not None and mount is not None:
            volumes[str(db.file)] = {"bind": mount, "mode": "ro"}
    return volumes


def container_uri(db: Database, plan: ForwardPlan) -> str:
    """``<LABEL>_DATABASE_URI``: the mounted file, the forwarded server (no password), or
    an ``other`` URI untouched."""
    mount = database_mount(db)
    if mount is not None:
        return f"sqlite:///{mount}" if is_sqlite_url(db.uri) else mount
    return plan.container_uri(db)


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _credentials(workspace: Workspace, databases: list[Database], plan: ForwardPlan,
                 requested: set[str]) -> dict[str, str]:
    """Env of the passwords of the requested server databases; writes the run's pgpass.

    Every password goes to ``<LABEL>_DB_PARAM_PASSWORD`` (read by v6flow's loaders and by
    v4's ``@database_connection``); a PostgreSQL one is also written to ``pgpass`` in the
    run folder (mode 0400) with ``PGPASSFILE`` pointing at it, so any libpq driver finds it,
    also in an unmodified v4 algorithm, while ``<LABEL>_DATABASE_URI`` holds no secret.
    """
    env: dict[str, str] = {}
    lines: list[str] = []
    for db in databases:
        if db.password is None or db.label not in requested:
            continue
        password = db.password.get_secret_value()
        env[f"{db.label.upper()}_DB_PARAM_PASSWORD"] = password
        if dialect(db.uri) in POSTGRES_SCHEMES and db.server is not None:
            parts = urlsplit(plan.container_uri(db))
            fields = (parts.hostname or "*", str(db.server[1]),
                      unquote(parts.path.lstrip("/")) or "*", unquote(parts.username or "") or "*")
            lines.append(":".join([*map(_pgpass_field, fields), _pgpass_field(password)]))
    if lines:
        path = workspace.host_dir / "pgpass"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        give_to_algorithm(path, 0o400)
        env["PGPASSFILE"] = f"{workspace.container_dir}/pgpass"
    return env


def missing_databases(settings: NodeSettings,
                      task_databases: list[dict[str, Any]]) -> str | None:
    """Why this node cannot serve a task's databases (None when it has every label)."""
    have = [db.label for db in settings.databases]
    asked = [str(e.get("label")) for e in task_databases if isinstance(e, dict)]
    missing = [label for label in asked if label not in have]
    if not missing:
        return None
    return (f"the task requested database(s) {', '.join(map(repr, missing))}, which this node "
            f"does not have; its databases: {', '.join(have) or 'none'}")


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

    Every node database gets ``<LABEL>_DATABASE_URI`` and ``_DATABASE_TYPE`` (CONTRACT §1.2);
    the databases the task requested also get their ``_DB_PARAM_<KEY>`` values and password
    (see :func:`_credentials`, which writes the run's ``pgpass`` file). The values are in
    the container's environment only: nothing here is logged.

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
    plan = plan_forwards(settings.databases)
    for db in settings.databases:
        env[f"{db.label.upper()}_DATABASE_URI"] = container_uri(db, plan)
        env[f"{db.label.upper()}_DATABASE_TYPE"] = db.type.value
        if db.label in requested:
            env.update({f"{db.label.upper()}_DB_PARAM_{key.upper()}": value.get_secret_value()
                        for key, value in db.env.items()})
    env.update(_credentials(workspace, settings.databases, plan, set(requested)))
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
