"""Entry point of the ``v6flow`` command: wires the sub-command groups together."""

from __future__ import annotations

import typer

from v6flow.cli import demo_cmd, image_cmd, node_cmd, server_cmd

app = typer.Typer(
    name="v6flow",
    help="Federated analysis with Prefect flows as central functions (vantage6 v4 compatible).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(server_cmd.app, name="server", help="Run the central server.")
app.add_typer(node_cmd.app, name="node", help="Run a node at a data station.")
app.add_typer(image_cmd.app, name="image", help="Build algorithm images offline.")
app.command("demo", help="Run a demo federated analysis on the embedded default.")(demo_cmd.demo)


if __name__ == "__main__":  # pragma: no cover - `python -m v6flow.cli.main`
    app()
