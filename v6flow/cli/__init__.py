"""The ``v6flow`` command line (Typer). Sub-commands import their heavy parts lazily."""
