"""``v6flow server``: run the central server (imports the server package lazily)."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

EXIT_BAD_SETTINGS = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(f"v6flow server: {message}", err=True)
    return typer.Exit(code=EXIT_BAD_SETTINGS)


def _configure_logging(level: str) -> None:
    import structlog

    numeric = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))
    renderer: Any = (structlog.dev.ConsoleRenderer() if sys.stderr.isatty()
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


@app.callback()
def server() -> None:
    """Run the central server."""


@app.command("start")
def start(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port to listen on.")] = None,
) -> None:
    """Start the server (settings from V6FLOW_SERVER_* environment variables)."""
    from pydantic import ValidationError

    from server.settings import ServerSettings

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items()
                                 if v is not None}
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise _fail(f"invalid settings (env V6FLOW_SERVER_*): {problems}") from None
    _configure_logging(settings.log_level)

    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from server.app import create_app, prepare_database
    from v6flow.errors import ConfigurationError

    try:
        fastapi_app = create_app(settings)
        state = fastapi_app.state.v6flow
        state.issuer = prepare_database(state)
    except ConfigurationError as exc:
        raise _fail(f"setting {exc.field}: {exc.reason}") from None
    except (SQLAlchemyError, ModuleNotFoundError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(f"setting database_url: cannot use the database ({first_line})") from None
    uvicorn.run(fastapi_app, host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False,
                # The peer address is the client (rate limits key on it) unless the operator
                # names the reverse proxies whose X-Forwarded-For may replace it.
                proxy_headers=settings.forwarded_allow_ips is not None,
                forwarded_allow_ips=settings.forwarded_allow_ips,
                # Longer than any client's idle-connection expiry (httpx: 5 s), so a client
                # never reuses a connection the server is closing at that very moment.
                timeout_keep_alive=65,
                timeout_graceful_shutdown=settings.shutdown_grace_seconds)


if __name__ == "__main__":  # pragma: no cover - `python -m v6flow.cli.server_cmd start`
    app()
