"""The host-side wheelhouse that base and algorithm images install from, offline.

Two cached folders under ``<cache>/wheels``:

- ``deps-<hash>``: binary wheels of v6flow's core and ``[data]`` dependencies (plus setuptools
  and wheel, so derived images can build their own package without an index), downloaded for the
  image's interpreter and platform, keyed on the requirement list.
- ``v6flow-<hash>``: the v6flow wheel built from this checkout, keyed on a hash of its sources.

pip runs here, on the host, where the registry is reachable; inside ``docker build`` pip only
ever sees ``--no-index --find-links /opt/wheels``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from v6flow.errors import ConfigurationError, ImageBuildError

#: Interpreter of the Debian bookworm base image.
IMAGE_PYTHON = "3.11"
#: Its exact version, for environment markers (``python_full_version < "3.11.3"``).
IMAGE_PYTHON_FULL = "3.11.2"
#: Extras of v6flow installed into the base image.
IMAGE_EXTRAS = ("data",)
#: Build tools kept in the wheelhouse so derived images can ``pip install <folder>`` offline.
BUILD_TOOLS = ("setuptools>=68", "wheel")
#: Parallel ``pip download`` processes for a pinned set.
_DOWNLOAD_WORKERS = 8
#: Name of the requirement file written into the deps folder.
REQUIREMENTS_FILE = "v6flow-requirements.txt"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Wheelhouse:
    """Where the wheels of one base image build are."""

    deps: Path
    own: Path
    deps_hash: str
    source_hash: str


def source_root() -> Path:
    """Return the source checkout this v6flow is imported from.

    Raises:
        ConfigurationError: v6flow is installed from a wheel, not from a checkout.
    """
    import v6flow

    root = Path(v6flow.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise ConfigurationError(
            "source", f"no pyproject.toml next to {root / 'v6flow'}; build the base image "
            "from a v6flow source checkout (pip install -e .)",
        )
    return root


def _image_platforms() -> list[str]:
    """Platform tags a Debian bookworm (glibc 2.36) interpreter accepts on this machine."""
    arch = platform.machine() or "x86_64"
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 16, -1)]
    return [*tags, f"manylinux2014_{arch}", "linux_" + arch, "any"]


def requirements(root: Path) -> list[str]:
    """The dependency list of v6flow plus its image extras, read from pyproject.toml."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    reqs = list(project.get("dependencies", []))
    for extra in IMAGE_EXTRAS:
        reqs.extend(project.get("optional-dependencies", {}).get(extra, []))
    return [*reqs, *BUILD_TOOLS]


def _digest(parts: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def source_hash(root: Path) -> str:
    """Hash of everything that goes into the v6flow wheel (pyproject + ``v6flow/`` files)."""
    parts = [(root / "pyproject.toml").read_bytes()]
    for path in sorted((root / "v6flow").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            parts.append(str(path.relative_to(root)).encode())
            parts.append(path.read_bytes())
    return _digest(parts)


def flow_requirements(root: Path) -> list[str]:
    """What a flow needs beyond the base, pinned to the versions installed on this host.

    The ``prefect`` extra of pyproject.toml, resolved through the installed distributions'
    metadata (``name==version`` for the whole dependency closure). Letting pip resolve it for
    another platform backtracks for minutes; the host's working set is already resolved and
    tested, and the image gets exactly that set (installed with ``--no-deps``).

    Raises:
        ConfigurationError: a requirement is not installed here (``pip install -e .[prefect]``).
    """
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return pinned_closure(project.get("optional-dependencies", {}).get("prefect", []))


def pinned_closure(requirements: Sequence[str]) -> list[str]:
    """The dependency closure of ``requirements`` for the image, pinned to the host's versions.

    Markers are evaluated for the image's interpreter. A distribution the image needs but the
    host lacks (e.g. a backport for an older patch release) keeps its requirement specifier.

    Raises:
        ConfigurationError: a top-level requirement is not installed on this host.
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    image_env = {"python_version": IMAGE_PYTHON, "python_full_version": IMAGE_PYTHON_FULL,
                 "implementation_version": IMAGE_PYTHON_FULL}
    pinned: dict[str, str] = {}
    todo = [(Requirement(text), "", True) for text in requirements]
    while todo:
        requirement, extra, top_level = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(
                {**image_env, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name in pinned:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            if top_level:
                raise ConfigurationError(
                    "requirements", f"{requirement.name} is not installed on this host; "
                    "pip install -e '.[prefect]' first") from None
            pinned[name] = f"{requirement.name}{requirement.specifier}"
            continue
        pinned[name] = f"{name}=={dist.version}"
        for wanted_extra in ("", *requirement.extras):
            todo.extend((Requirement(text), wanted_extra, False) for text in dist.requires or [])
    return sorted(pinned.values())


#: Distributions of the checkout that the flow base image carries: folder → import package.
FLOW_DISTRIBUTIONS = {"blocks": "prefect_v6flow", "flows": "v6flow_flows"}
#: Their import packages (installed from wheels built from this checkout).
FLOW_PACKAGES = tuple(FLOW_DISTRIBUTIONS.values())


def _flow_files(root: Path) -> list[Path]:
    """Each flow distribution's pyproject.toml and its package's Python files.

    The flows' ``partial/`` packages are not part of it: each flow's own image installs its
    partial on top of the flow base.
    """
    files: list[Path] = []
    for folder, package in FLOW_DISTRIBUTIONS.items():
        files.append(root / folder / "pyproject.toml")
        files.extend(path for path in (root / folder / package).rglob("*.py")
                     if "__pycache__" not in path.parts and "partial" not in path.parts)
    return sorted(files)


def flow_sources_hash(root: Path, *, salt: str) -> str:
    """Hash of the flow distributions' sources, the flow requirements and ``salt``."""
    parts = [salt.encode(), *(r.encode() for r in flow_requirements(root))]
    for path in _flow_files(root):
        parts.append(str(path.relative_to(root)).encode())
        parts.append(path.read_bytes())
    return _digest(parts)


def stage_flow_sources(root: Path, dest: Path) -> None:
    """Copy the flow distributions (pyproject.toml + Python files) into ``dest``.

    The layout is the repository's (``dest/flows/v6flow_flows/summary/flow.py``): the image
    installs each ``dest/<folder>`` as a distribution, and keeps the files at these paths for
    the Prefect deployments' entrypoints (``deployments/prefect.yaml``).
    """
    for path in _flow_files(root):
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def deps_hash(root: Path) -> str:
    """Hash of the requirement list and the target interpreter/platform."""
    parts = [r.encode() for r in sorted(requirements(root))]
    parts.append(f"{IMAGE_PYTHON} {platform.machine()}".encode())
    return _digest(parts)


@contextmanager
def cache_lock(cache_dir: Path, name: str) -> Iterator[None]:
    """Exclusive inter-process lock on ``cache_dir/<name>.lock`` (parallel test sessions)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip(args: list[str], what: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise ImageBuildError(f"pip could not {what} on the host", log_tail=tail)


def download_wheels(reqs: Sequence[str], dest: Path, *, no_deps: bool = False) -> None:
    """Fetch binary wheels of ``reqs`` (with dependencies) for the image's interpreter.

    With ``no_deps`` (``reqs`` is a complete pinned set) the downloads run in parallel
    chunks: pip fetches one index page after another, which is slow for a hundred packages.

    Raises:
        ImageBuildError: a requirement has no wheel for CPython 3.11 on Linux, or pip failed.
    """
    dest.mkdir(parents=True, exist_ok=True)
    args = ["download", "--dest", str(dest), "--only-binary=:all:",
            "--python-version", IMAGE_PYTHON, "--implementation", "cp",
            *(["--no-deps"] if no_deps else [])]
    for tag in _image_platforms():
        args += ["--platform", tag]
    if not no_deps:
        _pip([*args, *reqs], f"download wheels for {', '.join(reqs)}")
        return
    chunks = [list(reqs[i::_DOWNLOAD_WORKERS]) for i in range(_DOWNLOAD_WORKERS)]
    with ThreadPoolExecutor(max_workers=_DOWNLOAD_WORKERS) as pool:
        for done in [pool.submit(_pip, [*args, *chunk], f"download wheels for {', '.join(chunk)}")
                     for chunk in chunks if chunk]:
            done.result()


def collect_wheels(reqs: Sequence[str], dest: Path) -> None:
    """Put wheels of ``reqs`` and their dependencies into ``dest`` (for ``wheels/`` folders).

    Binary wheels for the image interpreter are tried first; when some requirement only exists
    as a source distribution, ``pip wheel`` builds it, which needs a host Python 3.11.

    Raises:
        ImageBuildError: neither route worked.
    """
    try:
        download_wheels(reqs, dest)
    except ImageBuildError as first:
        if f"{sys.version_info.major}.{sys.version_info.minor}" != IMAGE_PYTHON:
            raise ImageBuildError(
                f"{first}\n(building from source needs a host Python {IMAGE_PYTHON})"
            ) from first
        _pip(["wheel", "--wheel-dir", str(dest), *reqs], f"build wheels for {', '.join(reqs)}")


def _stage_sources(root: Path, stage: Path) -> None:
    """Copy only what the v6flow wheel needs, so it never carries server/node code."""
    shutil.copy2(root / "pyproject.toml", stage / "pyproject.toml")
    readme = root / "README.md"
    if readme.is_file():
        shutil.copy2(readme, stage / "README.md")
    else:
        (stage / "README.md").write_text("v6flow\n")
    shutil.copytree(root / "v6flow", stage / "v6flow",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def ensure_wheelhouse(cache_dir: Path, *, root: Path | None = None,
                      progress: Progress | None = None) -> Wheelhouse:
    """Build (or reuse) the dependency wheels and the v6flow wheel of this checkout.

    Raises:
        ConfigurationError: not running from a source checkout.
        ImageBuildError: pip failed on the host.
    """
    say = progress or (lambda _msg: None)
    root = root or source_root()
    wheels = cache_dir / "wheels"
    d_hash, s_hash = deps_hash(root), source_hash(root)
    deps, own = wheels / f"deps-{d_hash}", wheels / f"v6flow-{s_hash}"
    with cache_lock(cache_dir, "wheels"):
        if not (deps / REQUIREMENTS_FILE).is_file():
            say("downloading dependency wheels (pandas, pyarrow, httpx, pyjwt, pydantic, ...)")
            partial = deps.with_name(deps.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            reqs = requirements(root)
            download_wheels(reqs, partial)
            (partial / REQUIREMENTS_FILE).write_text("\n".join(reqs) + "\n")
            shutil.rmtree(deps, ignore_errors=True)
            partial.rename(deps)
        else:
            say(f"reusing dependency wheels {deps.name}")
        if not any(own.glob("v6flow-*.whl")):
            say("building the v6flow wheel from this checkout")
            partial = own.with_name(own.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix="v6flow-stage-") as tmp:
                _stage_sources(root, Path(tmp))
                # build backend (setuptools, wheel) from the deps folder: no index needed
                _pip(["wheel", "--no-deps", "--no-index", "--find-links", str(deps),
                      "--wheel-dir", str(partial), tmp], "build the v6flow wheel")
            shutil.rmtree(own, ignore_errors=True)
            partial.rename(own)
            for stale in wheels.glob("v6flow-*"):
                if stale != own:  # one wheel per checkout state is enough
                    shutil.rmtree(stale, ignore_errors=True)
        else:
            say(f"reusing v6flow wheel {own.name}")
    return Wheelhouse(deps=deps, own=own, deps_hash=d_hash, source_hash=s_hash)


def extra_wheels(cache: Path, requirements: Sequence[str], say: Progress, *,
                 no_deps: bool = False) -> Path:
    """Cached folder with wheels of ``requirements`` (and their dependencies, unless
    ``no_deps``: then ``requirements`` is already the whole pinned set)."""
    key = hashlib.sha256("\n".join([*sorted(requirements), str(no_deps)]).encode()
                         ).hexdigest()[:16]
    folder = cache / "wheels" / f"extra-{key}"
    with cache_lock(cache, "wheels"):
        if not (folder / ".complete").is_file():
            say(f"fetching wheels for {', '.join(requirements)} on the host")
            shutil.rmtree(folder, ignore_errors=True)
            if no_deps:
                download_wheels(requirements, folder, no_deps=True)
            else:
                collect_wheels(requirements, folder)
            (folder / ".complete").write_text("\n".join(requirements) + "\n")
    return folder


def link_tree(src: Path, dest: Path) -> None:
    """Hard-link (or copy, across file systems) the files of ``src`` into ``dest``."""
    dest.mkdir(parents=True)
    for item in src.iterdir():
        if item.is_file():
            link_file(item, dest / item.name)


def link_file(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest``, or copy it across file systems."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
