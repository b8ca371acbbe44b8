"""CLI glue for settings: load them or exit 2 with the message, and list them in ``--help``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.core import TyperCommand

from v6flow.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

SettingsT = TypeVar("SettingsT", bound="BaseSettings")


def load_or_exit(command: str, settings_cls: type[SettingsT], path: Path | None, *,
                 overrides: Mapping[str, Any] | None = None, file_over_env: bool = False,
                 what: str = "settings") -> SettingsT:
    """:func:`v6flow._config.load_settings`, or print every problem and exit 2."""
    from v6flow._config import SettingsError, load_settings

    try:
        return load_settings(settings_cls, path, overrides=overrides,
                             file_over_env=file_over_env, what=what)
    except SettingsError as exc:
        typer.echo(f"{command}: {exc}", err=True)
        raise typer.Exit(int(ExitCode.CONFIGURATION)) from None


def settings_help_command(settings_cls: Callable[[], type[BaseSettings]], *,
                          file_over_env: bool = False) -> type[TyperCommand]:
    """A Typer command class whose ``--help`` ends with every setting of ``settings_cls()``.

    ``settings_cls`` is called only when help is shown, so the settings module (and the
    package behind it) is imported lazily. The list is built from ``model_fields``, so a field
    added to the settings shows up without touching the CLI.
    """

    class SettingsHelpCommand(TyperCommand):
        # Any: Typer vendors its own click, whose Context/HelpFormatter are private names.
        def format_help(self, ctx: Any, formatter: Any) -> None:
            super().format_help(ctx, formatter)
            from v6flow._config import settings_help

            text = settings_help(settings_cls(), file_over_env=file_over_env)
            if self.rich_markup_mode is None:  # plain click formatter: goes out after us
                formatter.write(f"\n{text}\n")
            else:  # Typer's rich help is already printed
                from rich.console import Console

                Console(soft_wrap=True, highlight=False).print(text, markup=False)
                typer.echo()

    return SettingsHelpCommand
