"""``v6flow node …``: create, list, inspect and run the nodes of a data station.

- ``node new`` writes a node.yaml (asked interactively, or from options) into the node
  configuration folder (:mod:`v6flow.cli.node_files`), validated by the node's own model;
- ``node list`` shows the nodes of that folder, and which of them run;
- ``node files`` prints where a node keeps its things;
- ``node start`` checks its settings against the world first (:mod:`v6flow_node.preflight`:
  task_dir, Docker, ``server_url``, ``api_key``), shows ``connecting`` and ``online``, and runs the
  daemon.

The node package is imported lazily, inside the commands.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.markup import escape

from v6flow.cli._settings import load_or_exit, settings_help_command
from v6flow.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from v6flow_node.preflight import Failure, Ready
    from v6flow_node.settings import NodeSettings

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigDir = Annotated[Path | None, typer.Option(
    "--config-dir", file_okay=False,
    help="Folder of node configurations (default: $V6FLOW_NODE_CONFIG_DIR, else "
         "$XDG_CONFIG_HOME/v6flow/nodes, else ~/.config/v6flow/nodes).")]


def _settings_class() -> type[NodeSettings]:
    from v6flow_node.settings import NodeSettings

    return NodeSettings


def _fail(command: str, message: str, code: ExitCode) -> typer.Exit:
    _err.print(f"[bold red]{command}:[/bold red] {escape(message)}")
    return typer.Exit(int(code))


def _exit_code(kind: Failure) -> ExitCode:
    from v6flow_node.preflight import Failure

    return {Failure.CONFIGURATION: ExitCode.CONFIGURATION, Failure.DOCKER: ExitCode.DOCKER,
            Failure.SERVER: ExitCode.SERVER_UNREACHABLE,
            Failure.AUTHENTICATION: ExitCode.AUTHENTICATION}[kind]


# --- node start -----------------------------------------------------------------------------

@app.command("start", cls=settings_help_command(_settings_class, file_over_env=True))
def start(
    config: Annotated[Path, typer.Option("--config", "-c", dir_okay=False,
                                         help="The node.yaml file (keys: the settings below).")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_file: Annotated[Path | None, typer.Option(
        dir_okay=False, help="Append the node's log (JSON lines) to this file instead of "
                             "standard error; `node files` shows it.")] = None,
) -> None:
    """Check the settings (task_dir, Docker, server_url, api_key), then run the node daemon.

    A wrong setting stops the start with a message naming it and an exit code; once started,
    a lost server is retried until it is back. Stops cleanly on SIGTERM/SIGINT.
    """
    from v6flow.logging import LEVELS, configure_logging
    from v6flow_node.exit_codes import HELP
    from v6flow_node.exit_codes import ExitCode as NodeExitCode
    from v6flow_node.preflight import PreflightError, preflight

    command = "v6flow node start"
    if log_level.lower() not in LEVELS:
        raise _fail(command, f"--log-level must be one of {', '.join(LEVELS)}",
                    ExitCode.CONFIGURATION)
    # The node's documented order: node.yaml wins over V6FLOW_NODE_* variables.
    settings = load_or_exit(command, _settings_class(), config, file_over_env=True,
                            what="node configuration")
    try:
        ready = preflight(settings, progress=lambda line: _err.print(escape(line)),
                          config_file=str(config))
    except PreflightError as exc:
        raise _fail(command, str(exc), _exit_code(exc.kind)) from None
    name = settings.name or ready.node_name or f"node-{ready.node_id}"
    _err.print(f"connected as node {escape(repr(name))} (id {ready.node_id}); starting")
    with (_claimed(command, config, settings, ready, name, log_file),
          _log_stream(command, log_file) as stream):
        configure_logging(log_level, stream=stream)
        code = _run_daemon(settings, ready, name)
    if code is not NodeExitCode.OK:
        _err.print(f"[bold red]error:[/bold red] {escape(HELP[code])}")
    raise typer.Exit(int(code))


@contextlib.contextmanager
def _claimed(command: str, config: Path, settings: NodeSettings, ready: Ready, name: str,
             log_file: Path | None) -> Iterator[None]:
    """Hold the node's pid file while the daemon runs (refuse a second process)."""
    from v6flow.cli.node_files import (
        AlreadyRunning,
        node_folder_name,
        remove_pid_file,
        write_pid_file,
    )

    folder = node_folder_name(name)
    try:
        path = write_pid_file(settings.task_dir / folder, config=config, name=folder,
                              node_id=ready.node_id, server_url=settings.server_url,
                              log_file=log_file)
    except AlreadyRunning as exc:
        raise _fail(command, f"{exc} — stop it first (kill -TERM {exc.record.pid})",
                    ExitCode.FAILED) from None
    except OSError as exc:
        raise _fail(command, f"task_dir {settings.task_dir}: cannot write the pid file "
                             f"({exc.strerror})", ExitCode.CONFIGURATION) from None
    try:
        yield
    finally:
        remove_pid_file(path)


@contextlib.contextmanager
def _log_stream(command: str, path: Path | None) -> Iterator[TextIO]:
    """Standard error, or ``--log-file`` opened for appending (line-buffered)."""
    if path is None:
        yield sys.stderr
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise _fail(command, f"--log-file {path}: cannot write it ({exc.strerror})",
                    ExitCode.CONFIGURATION) from None
    with handle:
        yield handle


def _run_daemon(settings: NodeSettings, ready: Ready, name: str) -> Any:
    """Run the daemon; print ``online`` once the server lists the node as online."""
    import asyncio

    from v6flow_node.daemon import NodeDaemon
    from v6flow_node.preflight import wait_online

    async def main() -> Any:
        daemon = NodeDaemon(settings)

        async def announce() -> None:
            if await wait_online(settings.server_url, ready):
                _err.print(f"[green]online[/green]: the server lists node "
                           f"{escape(repr(name))} as online")

        watcher = asyncio.create_task(announce())
        try:
            return await daemon.run()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    return asyncio.run(main())


# --- node new -------------------------------------------------------------------------------

@app.command("new")
def new(
    name: Annotated[str | None, typer.Option(help="The node's name (also the file's name).")
                    ] = None,
    server_url: Annotated[str | None, typer.Option(
        help="The server's API root, e.g. http://127.0.0.1:7601/api.")] = None,
    api_key: Annotated[str | None, typer.Option(
        help="The node's API key, printed when the node was registered on the server "
             "(prefer the prompt: options end up in the shell history).")] = None,
    task_dir: Annotated[Path | None, typer.Option(
        file_okay=False, help="Folder for run files and the proxy socket (default: "
                              "$XDG_DATA_HOME/v6flow/tasks or ~/.local/share/v6flow/tasks).")
                        ] = None,
    database: Annotated[list[str] | None, typer.Option(
        help="A database: label=default,uri=/data/a.csv,type=csv (repeatable).")] = None,
    allowed_algorithm: Annotated[list[str] | None, typer.Option(
        help="An image this node may run: exact image, image without tag, or regex "
             "(repeatable; none given: no image may run).")] = None,
    require_algorithm_pull: Annotated[bool | None, typer.Option(
        "--require-algorithm-pull/--no-require-algorithm-pull",
        help="Images must be pulled from their registry (default yes; say no for images "
             "built on this host).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", dir_okay=False,
        help="Where to write the file (default: <config folder>/<name>.yaml).")] = None,
    config_dir: ConfigDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Ask nothing: take the options "
                                                          "and the defaults.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a node's node.yaml: asks for what the options do not give (or --yes)."""
    from rich.prompt import Confirm, Prompt

    from v6flow._config import SettingsError
    from v6flow.cli import node_new
    from v6flow.cli.node_files import default_config_dir, default_task_dir

    command = "v6flow node new"
    answers = node_new.NodeAnswers(
        name=name, server_url=server_url, api_key=api_key,
        task_dir=str(task_dir) if task_dir is not None else None,
        allowed_algorithms=list(allowed_algorithm) if allowed_algorithm else None,
        require_algorithm_pull=True if require_algorithm_pull is None else require_algorithm_pull)
    for index, text in enumerate(database or []):
        try:
            answers.databases.append(node_new.parse_database(text))
        except ValueError as exc:
            raise _fail(command, f"--database #{index + 1}: {exc}",
                        ExitCode.CONFIGURATION) from None
    given = {"name": name is not None, "server_url": server_url is not None,
             "api_key": api_key is not None, "task_dir": task_dir is not None,
             "databases": bool(database),
             "policies": bool(allowed_algorithm) or require_algorithm_pull is not None}
    questions = None if yes else node_new.Questions(
        ask=lambda q, **kw: Prompt.ask(q, console=_err, **kw),
        confirm=lambda q, **kw: Confirm.ask(q, console=_err, **kw), say=_err.print)
    if questions is None and answers.task_dir is None:
        answers.task_dir = str(default_task_dir())
    try:
        settings = node_new.collect(answers, questions, given)
    except SettingsError as exc:
        raise _fail(command, str(exc), ExitCode.CONFIGURATION) from None
    except node_new.NoAnswer as exc:
        raise _fail(command, str(exc), ExitCode.CONFIGURATION) from None
    assert settings.name is not None  # collect() requires it
    path = output or (config_dir or default_config_dir()) / f"{settings.name}.yaml"
    try:
        node_new.write_private(path, node_new.render(settings), force=force)
    except FileExistsError:
        raise _fail(command, f"{path} exists (use --force to overwrite it, or --output)",
                    ExitCode.CONFIGURATION) from None
    except OSError as exc:
        raise _fail(command, f"cannot write {path} ({exc.strerror})",
                    ExitCode.CONFIGURATION) from None
    for warning in node_new.warnings_for(settings):
        _err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    _out.print(f"wrote {escape(str(path))} (mode 0600: it holds the API key)")
    _out.print(f"start the node with: v6flow node start --config {escape(str(path))}")


# --- node list ------------------------------------------------------------------------------

def _describe(path: Path) -> dict[str, Any]:
    """One row of ``node list``: from the file as written, plus validation and process."""
    import yaml

    from v6flow._config import SettingsError, load_settings
    from v6flow.cli.node_files import find_node_process

    row: dict[str, Any] = {"config": str(path), "name": None, "server_url": None,
                           "databases": [], "running": False, "pid": None, "problem": None}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        row["problem"] = f"cannot read it ({type(exc).__name__})"
        return row
    if not isinstance(raw, dict):
        row["problem"] = "not a mapping of settings"
        return row
    row["name"] = raw.get("name")
    row["server_url"] = raw.get("server_url")
    row["databases"] = [f"{db.get('label')} ({db.get('type', 'csv')})"
                        for db in raw.get("databases") or [] if isinstance(db, dict)]
    try:
        load_settings(_settings_class(), path, file_over_env=True, what="node configuration")
    except SettingsError as exc:
        row["problem"] = str(exc.problems[0]) + (
            f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else "")
    task_dir = raw.get("task_dir")
    if isinstance(task_dir, str) and task_dir:
        name = raw.get("name") if isinstance(raw.get("name"), str) else None
        running = find_node_process(path, Path(task_dir).expanduser().resolve(), name)
        if running is not None:
            row["running"], row["pid"] = True, running.pid
            row["name"] = row["name"] or running.name
    return row


@app.command("list")
def list_nodes(
    config_dir: ConfigDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
) -> None:
    """List the node configurations of the config folder, and which nodes are running."""
    from rich.table import Table

    from v6flow.cli.node_files import default_config_dir

    folder = config_dir or default_config_dir()
    paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    rows = [_describe(path) for path in paths]
    if as_json:
        typer.echo(json.dumps({"config_dir": str(folder), "nodes": rows}, indent=2))
        return
    if not rows:
        _out.print(f"no node configurations in {escape(str(folder))} "
                   "(create one with: v6flow node new)")
        return
    table = Table(title=f"nodes in {escape(str(folder))}", title_justify="left")
    for column in ("name", "server", "databases", "status", "config"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = (f"[green]running[/green] (pid {row['pid']})" if row["running"]
                  else "stopped")
        if row["problem"]:
            status += f"\n[red]invalid:[/red] {escape(row['problem'])}"
        table.add_row(escape(str(row["name"] or "(server's name)")),
                      escape(str(row["server_url"] or "?")),
                      escape(", ".join(row["databases"]) or "none"), status,
                      escape(Path(row["config"]).name))
    _out.print(table)


# --- node files -----------------------------------------------------------------------------

@app.command("files")
def files(
    config: Annotated[Path, typer.Option("--config", "-c", dir_okay=False,
                                         help="The node.yaml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
) -> None:
    """Print where the node keeps its things: config, task_dir, run folders, socket, log."""
    from v6flow.cli.node_files import node_files

    settings = load_or_exit("v6flow node files", _settings_class(), config, file_over_env=True,
                            what="node configuration")
    places = node_files(config, settings.task_dir, settings.name).as_json()
    places["log"] = places["log"] or "standard error of `v6flow node start` (or its --log-file)"
    places["databases"] = {db.label: f"{db.uri} ({db.type.value})" for db in settings.databases}
    if as_json:
        typer.echo(json.dumps(places, indent=2))
        return
    labels = {"config": "config file", "task_dir": "task_dir", "node_dir": "node folder",
              "run_folders": "run folders", "proxy_socket": "proxy socket",
              "pid_file": "pid file", "log": "log"}
    for key, label in labels.items():
        _out.print(f"{label:<13} {escape(str(places[key]))}")
    for label, where in places["databases"].items():
        _out.print(f"{'database':<13} {escape(label)}: {escape(where)}")
