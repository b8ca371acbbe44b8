"""``v6flow node …``: run a node at a data station (imports the node package lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from v6flow.cli._settings import load_or_exit, settings_help_command

if TYPE_CHECKING:
    from node.settings import NodeSettings

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def _settings_class() -> type[NodeSettings]:
    from node.settings import NodeSettings

    return NodeSettings


@app.command("start", cls=settings_help_command(_settings_class, file_over_env=True))
def start(
    config: Annotated[Path, typer.Option("--config", "-c", dir_okay=False,
                                         help="The node.yaml file (keys: the settings below).")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Start the node daemon; stops cleanly on SIGTERM/SIGINT."""
    import asyncio

    from node.daemon import NodeDaemon
    from node.exit_codes import HELP, ExitCode
    from v6flow.logging import LEVELS, configure_logging

    if log_level.lower() not in LEVELS:
        typer.echo(f"v6flow node: --log-level must be one of {', '.join(LEVELS)}", err=True)
        raise typer.Exit(int(ExitCode.CONFIGURATION))
    # The node's documented order: node.yaml wins over V6FLOW_NODE_* variables.
    settings = load_or_exit("v6flow node", _settings_class(), config, file_over_env=True,
                            what="node configuration")
    configure_logging(log_level)
    code = asyncio.run(NodeDaemon(settings).run())
    if code is not ExitCode.OK:
        typer.echo(f"error: {HELP[code]}", err=True)
    raise typer.Exit(int(code))
