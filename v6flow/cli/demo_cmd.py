"""``v6flow demo``: a federated analysis end to end on this machine (imports lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from v6flow.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from v6flow_flows.demo import DemoReport


STATS = ("count", "missing", "mean", "std", "min", "max")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


def _wait_for_interrupt(console: Console, report: DemoReport) -> None:
    """Print the report, then keep the federation up until Ctrl-C (SIGINT) or SIGTERM."""
    import signal
    import threading

    _print_report(console, report)
    console.print(f"[bold]The federation keeps running: web UI at {report.ui_url} "
                  "(logins above). Press Ctrl-C to stop it.[/]")
    stop = threading.Event()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in handlers:  # also when started with SIGINT ignored (a background job)
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    console.print("stopping the federation")


def _print_report(console: Console, report: DemoReport) -> None:
    from rich.table import Table

    numeric = Table(title="Numeric columns: federated (v6flow) vs pooled (pandas)")
    numeric.add_column("column")
    numeric.add_column("source")
    for key in STATS:
        numeric.add_column(key, justify="right")
    for name, want in report.pooled["numeric"].items():
        got = report.federated["numeric"].get(name, {})
        numeric.add_row(name, "v6flow", *(_fmt(got.get(k)) for k in STATS))
        numeric.add_row("", "[dim]pandas[/]", *(f"[dim]{_fmt(want[k])}[/]" for k in STATS),
                        end_section=True)
    console.print(numeric)
    categorical = Table(title="Categorical columns")
    for column in ("column", "value", "v6flow", "pandas"):
        categorical.add_column(column, justify="right" if column in ("v6flow", "pandas")
                               else "left")
    for name, want in report.pooled["categorical"].items():
        got = report.federated["categorical"].get(name, {"counts": {}, "missing": None})
        for value, n in want["counts"].items():
            categorical.add_row(name, value, _fmt(got["counts"].get(value)), str(n))
        categorical.add_row(name, "(missing)", _fmt(got["missing"]), str(want["missing"]),
                            end_section=True)
    console.print(categorical)
    colour = "green" if report.max_abs_difference < 1e-9 and report.categories_equal else "red"
    console.print(f"[{colour}]max abs difference: {report.max_abs_difference:.3g}; "
                  f"categories {'equal' if report.categories_equal else 'DIFFER'}[/]")
    steps = ", ".join(f"{k} done at {v:.1f} s" for k, v in report.timings.items())
    console.print(f"wall time: {report.wall_seconds:.1f} s ({steps})")
    if report.ui_url is not None:
        console.print(f"web UI: {report.ui_url}")
    if report.directory is not None:
        console.print(f"kept: {report.directory}")


def demo(
    dev_runtime: Annotated[bool, typer.Option(
        "--dev-runtime",
        help="Development runtime for nodes without Docker (no isolation). This build has "
             "none: without Docker the demo says so and exits 1; with Docker it is "
             "ignored.")] = False,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Keep the federation (server, nodes, web UI) running after the report "
                       "until Ctrl-C, and keep its temporary directory (database, CSVs, "
                       "logs).")] = False,
    sizes: Annotated[str, typer.Option(
        help="Rows per organization, comma-separated.")] = "120,80,50",
) -> None:
    """Start a server and 3 nodes, run the summary flow under Prefect, compare with pandas.

    The server's web UI is up meanwhile (its address is printed); --keep leaves everything
    running until Ctrl-C.
    """
    from rich.console import Console

    from v6flow_flows.demo import DemoError, run_demo

    console = Console()
    try:
        row_counts = tuple(int(part) for part in sizes.split(",") if part.strip())
    except ValueError:
        console.print(f"[red]v6flow demo: --sizes must be integers, got {sizes!r}[/]")
        raise typer.Exit(int(ExitCode.CONFIGURATION)) from None
    try:
        report = run_demo(
            dev_runtime=dev_runtime, keep=keep, sizes=row_counts,
            say=lambda message: console.print(f"[dim]·[/] {message}"),
            hold=(lambda done: _wait_for_interrupt(console, done)) if keep else None)
    except DemoError as exc:
        console.print(f"[red]v6flow demo: {exc}[/]")
        raise typer.Exit(int(ExitCode.FAILED)) from None
    if keep:
        if report.directory is not None:
            console.print(f"kept: {report.directory}")
        return
    _print_report(console, report)
