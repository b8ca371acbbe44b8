"""``v6flow node …``: run a node at a data station (imports the node package lazily)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

_SECRET_KEYS = ("token", "api_key", "password", "authorization")


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: never log secrets."""
    for key in list(event):
        if any(secret in key.lower() for secret in _SECRET_KEYS):
            event[key] = "***"
    return event


def _configure_logging(level: str) -> None:
    """Configure structlog once: JSON when stderr is not a TTY, console otherwise."""
    import structlog

    renderer: Any = (structlog.dev.ConsoleRenderer() if sys.stderr.isatty()
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


@app.command("start")
def start(
    config: Annotated[Path, typer.Option("--config", "-c", help="The node.yaml file.")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Start the node daemon; stops cleanly on SIGTERM/SIGINT."""
    import asyncio

    from node.daemon import NodeDaemon
    from node.exit_codes import HELP, ExitCode
    from node.settings import load_settings
    from v6flow.errors import ConfigurationError

    try:
        settings = load_settings(config)
    except ConfigurationError as exc:
        typer.echo(f"error: invalid node configuration: {exc}", err=True)
        raise typer.Exit(int(ExitCode.CONFIGURATION)) from None
    _configure_logging(log_level)
    code = asyncio.run(NodeDaemon(settings).run())
    if code is not ExitCode.OK:
        typer.echo(f"error: {HELP[code]}", err=True)
    raise typer.Exit(int(code))
