"""``v6flow server import``: create organizations, collaborations, users and nodes from a file.

Works on the server's database directly (the settings of ``--config`` and ``V6FLOW_SERVER_*``),
in one transaction, and writes one ready ``node.yaml`` per created node (mode 0600: it holds
the node's API key). The format and the rules are in docs/import.md and
server/v6flow_server/importer.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from v6flow.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from v6flow_server.importer import CreatedNode, Plan

COMMAND = "v6flow server import"
PLACEHOLDER_DATA = "/path/to/data.csv"
#: The node listens on ``<task_dir>/<node name>/proxy/proxy.sock``; a unix socket path has at
#: most 107 bytes (sun_path is 108 with the NUL).
MAX_SOCKET_PATH = 107
SOCKET_TAIL = "/proxy/proxy.sock"


def _exit(message: str, code: ExitCode = ExitCode.CONFIGURATION) -> typer.Exit:
    typer.echo(f"{COMMAND}: {message}", err=True)
    return typer.Exit(int(code))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "node"


def render_node_config(node: CreatedNode, *, server_url: str, task_dir: Path) -> str:
    """A node.yaml for ``node``: ready but for the database path(s) the operator fills in."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    encrypted = ("# The collaboration is encrypted: this v6flow node does not run tasks in\n"
                 "# encrypted collaborations yet (the server refuses them).\n"
                 if node.encrypted else "")
    return (
        f"# node.yaml of node {json.dumps(node.name)} (organization "
        f"{json.dumps(node.organization)},\n# collaboration {json.dumps(node.collaboration)}), "
        f"written by `v6flow server import` at {stamp}.\n"
        "# Start it with: v6flow node start --config <this file>\n"
        "# It holds the node's API key (the server keeps only a hash): keep it private.\n"
        f"{encrypted}"
        f"server_url: {json.dumps(server_url)}\n"
        f"api_key: {json.dumps(node.api_key)}\n"
        f"name: {json.dumps(node.name)}\n"
        f"task_dir: {json.dumps(str(task_dir))}\n"
        "# EDIT: the data this node offers to algorithms (csv or parquet files on this host).\n"
        "# The node refuses to start until every uri is an existing file.\n"
        "databases:\n"
        "  - label: default\n"
        f"    uri: {PLACEHOLDER_DATA}\n"
        "    type: csv\n"
        "# Which algorithm images may run: exact images, images without tag, or regexes.\n"
        "# Empty (the safe default) allows none: add the images of your collaboration.\n"
        "policies:\n"
        "  allowed_algorithms: []\n"
        "  require_algorithm_pull: true\n"
    )


@dataclass
class StagedConfigs:
    """node.yaml files written under temporary names until the transaction commits."""

    final: dict[str, Path]
    temporary: dict[str, Path]
    warnings: list[str] = field(default_factory=list)

    def publish(self) -> None:
        """Move every file to its final name (after the commit)."""
        for name, temp in self.temporary.items():
            temp.replace(self.final[name])

    def discard(self) -> None:
        """Remove the temporary files (the transaction was rolled back)."""
        for temp in self.temporary.values():
            temp.unlink(missing_ok=True)


def stage_node_configs(nodes: list[CreatedNode], directory: Path, *,
                       server_url: str) -> StagedConfigs:
    """Write each node's config as a hidden temporary file (0600) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    task_dir = directory.resolve() / "tasks"
    staged = StagedConfigs({}, {})
    used: set[str] = set()
    try:
        for node in nodes:
            stem = _slug(node.name)
            if stem in used:
                stem = f"{stem}-{node.node_id}"
            used.add(stem)
            final = directory / f"{stem}.yaml"
            temp = directory / f".{stem}.yaml.{secrets.token_hex(4)}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            staged.temporary[node.name], staged.final[node.name] = temp, final
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(render_node_config(node, server_url=server_url, task_dir=task_dir))
            socket = len(os.fsencode(f"{task_dir}/{node.name}{SOCKET_TAIL}"))
            if socket > MAX_SOCKET_PATH:
                staged.warnings.append(
                    f"{final}: task_dir and the node name make the proxy socket path about "
                    f"{socket} bytes (at most {MAX_SOCKET_PATH}); set a shorter task_dir")
    except OSError:
        staged.discard()
        raise
    return staged


def _report(plan: Plan, *, dry_run: bool, configs: dict[str, Path], warnings: list[str],
            as_json: bool) -> None:
    from v6flow_server.importer import KINDS, Action

    if as_json:
        body: dict[str, Any] = {"dry_run": dry_run}
        for kind in KINDS:
            body[kind] = {action.value: [s.name for s in plan.of(kind, action)]
                          for action in Action}
        body["node_configs"] = {name: str(path) for name, path in configs.items()}
        body["warnings"] = warnings
        typer.echo(json.dumps(body, indent=2))
        return
    verb = "to create" if dry_run else "created"
    for kind in KINDS:
        steps = plan.of(kind)
        if not steps:
            continue
        made = len(plan.of(kind, Action.CREATE))
        typer.echo(f"{kind}: {made} {verb}, {len(steps) - made} existing")
        for step in steps:
            detail = f" ({step.detail})" if step.detail else ""
            if step.action is Action.CREATE:
                where = f" -> {configs[step.name]}" if step.name in configs else ""
                typer.echo(f"  + {step.name}{detail}{where}")
            elif kind == "nodes":
                typer.echo(f"  = {step.name}: exists; its API key cannot be recovered, so no "
                           "node.yaml is written (keep the one you have)")
            else:
                typer.echo(f"  = {step.name}: exists, left as it is")
    for warning in warnings:
        typer.echo(f"warning: {warning}")


def schema_is_current(engine: Engine) -> bool:
    """Whether the database holds the newest v6flow schema (a dry run cannot migrate)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from v6flow_server.db.migrate import alembic_config

    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())


def _server_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a comparison
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/api"


def import_file(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="The import file (YAML).")],
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", dir_okay=False,
        help="server.yaml: the database to import into (V6FLOW_SERVER_* win over it).")] = None,
    node_configs: Annotated[Path | None, typer.Option(
        "--node-configs", file_okay=False,
        help="Folder for one node.yaml per created node (needed when nodes are created).",
    )] = None,
    server_url: Annotated[str | None, typer.Option(
        help="server_url written into the node configs (default: from host and port).",
    )] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what would be created or skipped; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Create organizations, collaborations, users and nodes from FILE (see docs/import.md)."""
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    from v6flow._config import SettingsError
    from v6flow.cli.server_cmd import load_server_settings
    from v6flow.logging import configure_logging
    from v6flow_server.auth.password_policy import PasswordPolicy
    from v6flow_server.db.migrate import upgrade_to_head
    from v6flow_server.db.session import make_engine, make_session_factory
    from v6flow_server.importer import (
        Action,
        ImportFailed,
        apply_plan,
        load_import_file,
        plan_import,
    )
    from v6flow_server.services.bootstrap import seed_rules_and_roles

    settings = load_server_settings(config)
    configure_logging("warning")
    try:
        spec = load_import_file(file)
    except SettingsError as exc:
        raise _exit(str(exc)) from None
    engine = make_engine(settings.database_url,
                         sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    sessions = make_session_factory(engine)
    staged: StagedConfigs | None = None
    try:
        if dry_run and not schema_is_current(engine):
            raise _exit("the database has no current v6flow schema; a dry run does not "
                        "create it (run without --dry-run, or start the server once)")
        if not dry_run:
            upgrade_to_head(engine)
            with sessions.begin() as session:
                seed_rules_and_roles(session=session)
        with sessions.begin() as session:
            policy = PasswordPolicy(min_length=settings.password_min_length)
            plan = plan_import(session=session, spec=spec, path=file, policy=policy)
            creates_nodes = bool(plan.of("nodes", Action.CREATE))
            if creates_nodes and node_configs is None and not dry_run:
                raise _exit("--node-configs DIR is needed: nodes are created and their "
                            "API keys exist only in the node.yaml files written there")
            if not dry_run:
                created = apply_plan(session=session, plan=plan, policy=policy)
                if created and node_configs is not None:
                    staged = stage_node_configs(created, node_configs, server_url=server_url
                                                or _server_url(settings.host, settings.port))
    except SettingsError as exc:
        raise _exit(str(exc)) from None
    except ImportFailed as exc:
        if staged is not None:
            staged.discard()
        raise _exit(f"nothing was imported: {exc}", ExitCode.FAILED) from None
    except IntegrityError as exc:  # a row the checks did not see: a concurrent change
        if staged is not None:
            staged.discard()
        first_line = (str(exc.orig).strip().splitlines() or ["unique or foreign key"])[0]
        raise _exit(f"nothing was imported: the database refused a row, probably created "
                    f"meanwhile by someone else ({first_line}); run the import again",
                    ExitCode.FAILED) from None
    except SQLAlchemyError as exc:
        if staged is not None:
            staged.discard()
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _exit(f"setting database_url: cannot use the database ({first_line})") from None
    except OSError as exc:
        raise _exit(f"cannot write the node configs in {node_configs} ({exc.strerror}); "
                    "nothing was imported") from None
    finally:
        engine.dispose()
    if staged is not None:
        staged.publish()
    _report(plan, dry_run=dry_run, configs=staged.final if staged else {},
            warnings=staged.warnings if staged else [], as_json=as_json)
