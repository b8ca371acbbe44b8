"""Entry point of the ``v6flow`` command: wires the sub-command groups together."""

from __future__ import annotations

from typing import Annotated

import typer

from v6flow.cli import demo_cmd, image_cmd, key_cmd, node_cmd, server_cmd

app = typer.Typer(
    name="v6flow",
    help="Federated analysis with Prefect flows as central functions (vantage6 v4 compatible).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(server_cmd.app, name="server", help="Run the central server.")
app.add_typer(node_cmd.app, name="node", help="Run a node at a data station.")
app.add_typer(image_cmd.app, name="image", help="Build algorithm images offline.")
app.add_typer(key_cmd.app, name="key", help="Make an organization's key pair for encryption.")
app.command("demo", help="Run a demo federated analysis on the embedded default.")(demo_cmd.demo)


def version_line() -> str:
    """``v6flow <version> (vantage6 API <version>)``."""
    from v6flow import __version__
    from v6flow.compat import VANTAGE6_VERSION

    return f"v6flow {__version__} (compatible with the vantage6 {VANTAGE6_VERSION} API)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the v6flow version and the vantage6 API version it speaks, then exit.",
    )] = False,
) -> None:
    """Federated analysis with Prefect flows as central functions (vantage6 v4 compatible)."""


@app.command("version")
def version() -> None:
    """Print the v6flow version and the vantage6 API version it speaks."""
    typer.echo(version_line())


if __name__ == "__main__":  # pragma: no cover - `python -m v6flow.cli.main`
    app()
