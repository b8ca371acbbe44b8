"""``v6flow server``: run the central server (imports the server package lazily)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from v6flow.cli import import_cmd
from v6flow.cli._settings import load_or_exit, settings_help_command
from v6flow.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from v6flow_server.settings import ServerSettings

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
app.command("import")(import_cmd.import_file)

COMMAND = "v6flow server"
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", dir_okay=False,
    help="server.yaml (keys: the settings below). Environment variables win over it.")]


def _settings_class() -> type[ServerSettings]:
    from v6flow_server.settings import ServerSettings

    return ServerSettings


def _fail(message: str) -> typer.Exit:
    typer.echo(f"{COMMAND}: {message}", err=True)
    return typer.Exit(int(ExitCode.CONFIGURATION))


def load_server_settings(config: Path | None, **overrides: object) -> ServerSettings:
    """Options > ``V6FLOW_SERVER_*`` > ``config`` > defaults; exits 2 naming every bad field."""
    return load_or_exit(COMMAND, _settings_class(), config, overrides=overrides,
                        what="server configuration")


@app.callback()
def server() -> None:
    """Run the central server."""


@app.command("start", cls=settings_help_command(_settings_class))
def start(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (wins over "
                                                  "the file and the environment).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port to listen on (wins over "
                                                  "the file and the environment).")] = None,
) -> None:
    """Start the server (settings: options, V6FLOW_SERVER_* variables, --config file)."""
    settings = load_server_settings(config, host=host, port=port)
    from v6flow.logging import configure_logging

    configure_logging(settings.log_level)

    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from v6flow.errors import ConfigurationError
    from v6flow_server.app import create_app, prepare_database

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
                log_config=None,  # v6flow.logging already routes uvicorn's loggers
                # The peer address is the client (rate limits key on it) unless the operator
                # names the reverse proxies whose X-Forwarded-For may replace it.
                proxy_headers=settings.forwarded_allow_ips is not None,
                forwarded_allow_ips=settings.forwarded_allow_ips,
                # Longer than any client's idle-connection expiry (httpx: 5 s), so a client
                # never reuses a connection the server is closing at that very moment.
                timeout_keep_alive=65,
                timeout_graceful_shutdown=settings.shutdown_grace_seconds)


@app.command("new")
def new(
    path: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the file.")
                    ] = Path("server.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented server.yaml with every setting at its default."""
    from v6flow._config import settings_template

    text = settings_template(_settings_class(), title="v6flow server configuration "
                             "(v6flow server start --config server.yaml)")
    try:
        # 0600: operators put root_password or jwt_secret in here.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL),
                     0o600)
    except FileExistsError:
        raise _fail(f"{path} exists (use --force to overwrite it)") from None
    except OSError as exc:
        raise _fail(f"cannot write {path} ({exc.strerror})") from None
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    typer.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover - `python -m v6flow.cli.server_cmd start`
    app()
