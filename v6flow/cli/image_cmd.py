"""``v6flow image``: build the offline base image and algorithm images."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from v6flow.cli.exit_codes import ExitCode
from v6flow.errors import ConfigurationError, EngineUnavailable, ImageError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

_out = Console()
_err = Console(stderr=True)

def _progress(verbose: bool) -> Callable[[str], None]:
    """Progress callback: v6flow's own steps (lower-case) and docker's ``Step`` lines.

    With ``verbose`` every line of the build output is shown.
    """

    def show(line: str) -> None:
        if verbose or line.startswith("Step ") or line[:1].islower():
            _out.print(line, highlight=False, markup=False)

    return show


def _fail(exc: Exception) -> typer.Exit:
    code = (ExitCode.DOCKER if isinstance(exc, EngineUnavailable)
            else ExitCode.CONFIGURATION if isinstance(exc, ConfigurationError)
            else ExitCode.FAILED)
    _err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False,
               soft_wrap=True)
    return typer.Exit(int(code))


@app.command("build-base")
def build_base(
    tag: Annotated[str | None, typer.Option(
        "--tag", "-t", help="Tag (default: BASE_IMAGE)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Cache for the rootfs and wheels (default ~/.cache/v6flow)")] = None,
    nocache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every step")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every build line")] = False,
) -> None:
    """Build the base image offline (debootstrap + host wheelhouse, no registry)."""
    from v6flow import images

    started = time.monotonic()
    try:
        with _out.status("building the base image"):
            built = images.build_base_image(
                tag=tag or images.BASE_IMAGE, cache_dir=cache_dir,
                progress=_progress(verbose), nocache=nocache,
            )
    except (ImageError, ConfigurationError) as exc:
        raise _fail(exc) from None
    _out.print(f"[green]built[/green] {built} in {time.monotonic() - started:.1f} s")


@app.command("build")
def build(
    path: Annotated[Path, typer.Argument(help="Build context with a Dockerfile")],
    tag: Annotated[str, typer.Option("--tag", "-t", help="Image tag, e.g. v6flow/summary:latest")],
    base: Annotated[str | None, typer.Option(
        help="BASE_IMAGE build argument (default: the Dockerfile's ARG BASE_IMAGE default)",
    )] = None,
    nocache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every step")] = False,
    network: Annotated[bool, typer.Option(help="Allow network access during the build")] = False,
    requirement: Annotated[list[str] | None, typer.Option(
        "--requirement", "-r",
        help="Extra requirement whose wheels are fetched on the host into wheels/ (repeatable)",
    )] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every build line")] = False,
) -> None:
    """Build an algorithm image FROM its base image (a v6flow base is built if missing)."""
    from v6flow import images

    if not path.is_dir():
        _err.print(f"[bold red]error:[/bold red] {escape(str(path))} is not a directory",
                   highlight=False, soft_wrap=True)
        raise typer.Exit(int(ExitCode.CONFIGURATION))
    started = time.monotonic()
    try:
        with _out.status(f"building {tag}"):
            images.build_algorithm_image(
                path, tag, base=base, progress=_progress(verbose),
                nocache=nocache, network=network, requirements=requirement or (),
            )
    except (ImageError, ConfigurationError) as exc:
        raise _fail(exc) from None
    _out.print(f"[green]built[/green] {tag} in {time.monotonic() - started:.1f} s")


@app.command("build-debian")
def build_debian(
    path: Annotated[Path, typer.Argument(
        help="Algorithm folder with a Dockerfile and a debian-image.toml")],
    tag: Annotated[str, typer.Option("--tag", "-t", help="Image tag, e.g. v6flow/mean-r:0.1.0")],
    nocache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every Dockerfile step")
                       ] = False,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Cache for root filesystems and .deb files (default ~/.cache/v6flow)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every build line")] = False,
) -> None:
    """Build an algorithm image in any language on a Debian base (debootstrap, no registry).

    The base holds the Debian packages of the folder's debian-image.toml (no Python); the
    folder's Dockerfile (ARG BASE_IMAGE / FROM ${BASE_IMAGE}) adds the algorithm, offline.
    See docs/cross-language.md.
    """
    from v6flow._images.debian import build_debian_algorithm_image

    if not path.is_dir():
        _err.print(f"[bold red]error:[/bold red] {escape(str(path))} is not a directory",
                   highlight=False, soft_wrap=True)
        raise typer.Exit(int(ExitCode.CONFIGURATION))
    started = time.monotonic()
    try:
        with _out.status(f"building {tag}"):
            build_debian_algorithm_image(path, tag, progress=_progress(verbose),
                                         nocache=nocache, cache_dir=cache_dir)
    except (ImageError, ConfigurationError) as exc:
        raise _fail(exc) from None
    size = _image_size(tag)
    _out.print(f"[green]built[/green] {tag}{size} in {time.monotonic() - started:.1f} s")


def _image_size(tag: str) -> str:
    """`` (190 MB)``, or nothing when the engine does not say."""
    from v6flow import images

    try:
        client = images.docker_client()
        return f" ({client.images.get(tag).attrs['Size'] / 1e6:.0f} MB)"
    except Exception:  # only a nicety of the last line
        return ""
