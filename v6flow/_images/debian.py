"""Debian base images without Python, for algorithms written in other languages (R, a binary…).

An algorithm folder holds a recipe, ``debian-image.toml``, next to its ``Dockerfile``::

    suite = "bookworm"
    packages = ["r-base-core", "r-cran-jsonlite"]
    prune = ["usr/lib/R/library/*/html"]      # optional: more paths to delete (globs)

:func:`build_debian_algorithm_image` builds it offline, with no registry:

1. ``debootstrap --variant=minbase --include=<packages>`` on the host makes a root filesystem
   (debootstrap installs Depends only, never Recommends; the .deb files are cached in
   ``<cache>/debs/<suite>`` so a second recipe downloads only what is new);
2. documentation, manual pages, translations and apt lists are deleted (the ``copyright``
   files stay), then the recipe's own ``prune`` globs;
3. ``tar | docker import`` makes ``v6flow/debian-base:<suite>-<recipe digest>`` (kept: a
   second algorithm with the same recipe reuses it);
4. ``docker build`` of the folder (network ``none``) ``FROM`` that base, through
   :func:`v6flow.images.build_algorithm_image`.

Examples:
    >>> from v6flow._images.debian import build_debian_algorithm_image
    >>> build_debian_algorithm_image("flows/v6flow_flows/r_mean/r_partial",
    ...                              "v6flow/mean-r:0.1.0")  # doctest: +SKIP
    'v6flow/mean-r:0.1.0'
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from v6flow._images import wheelhouse as _wheelhouse
from v6flow._images.engine import docker_client, image_labels
from v6flow._images.rootfs import DEFAULT_MIRROR, DEFAULT_SUITE
from v6flow.errors import ConfigurationError, ImageBuildError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

#: File name of the recipe inside an algorithm's build context.
RECIPE_FILE = "debian-image.toml"
#: Repository of the imported bases; the tag is ``<suite>-<recipe digest>``.
BASE_REPOSITORY = "v6flow/debian-base"
#: Environment of every Debian base (``docker import`` starts from an empty config).
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "TMPDIR": "/tmp"}  # noqa: S108 - inside the image
#: Deleted from every rootfs (globs relative to ``/``); ``usr/share/doc`` keeps ``copyright``.
DEFAULT_PRUNE = ("usr/share/man/*", "usr/share/info/*", "usr/share/locale/*",
                 "usr/share/lintian/*", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*",
                 "var/cache/debconf/*-old", "var/log/*.log")
#: Bump when the build itself changes, so existing bases are rebuilt.
_BUILD_VERSION = "1"
_DONE_MARKER = ".v6flow-rootfs-complete"
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_SUITE = re.compile(r"^[a-z]+$")


@dataclass(frozen=True)
class DebianRecipe:
    """What goes into a Debian base: suite, packages and the extra paths to delete."""

    packages: tuple[str, ...]
    suite: str = DEFAULT_SUITE
    prune: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = RECIPE_FILE) -> DebianRecipe:
        """Validate a recipe given as a mapping (the parsed TOML).

        Raises:
            ConfigurationError: an unknown key or a wrong value; ``field`` names the key.
        """
        unknown = sorted(set(data) - {"suite", "packages", "prune"})
        if unknown:
            raise ConfigurationError(f"{where}: {unknown[0]}",
                                     "unknown key (known: suite, packages, prune)")
        suite = data.get("suite", DEFAULT_SUITE)
        if not isinstance(suite, str) or not _SUITE.match(suite):
            raise ConfigurationError(f"{where}: suite", "must be a Debian suite name such as "
                                                        f"{DEFAULT_SUITE!r}")
        packages = data.get("packages")
        if (not isinstance(packages, list) or not packages
                or not all(isinstance(p, str) and _PACKAGE.match(p) for p in packages)):
            raise ConfigurationError(f"{where}: packages", "must be a non-empty list of Debian "
                                                           "package names")
        prune = data.get("prune", [])
        if not isinstance(prune, list) or not all(_relative_glob(p) for p in prune):
            raise ConfigurationError(f"{where}: prune", "must be a list of paths relative to / "
                                                        "(globs allowed, no '..')")
        return cls(packages=tuple(packages), suite=suite, prune=tuple(prune))

    @classmethod
    def from_file(cls, path: Path) -> DebianRecipe:
        """Read ``debian-image.toml``.

        Raises:
            ConfigurationError: the file is missing, not TOML, or a value is wrong.
        """
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(str(path), f"cannot read the recipe ({exc.strerror})"
                                     ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(str(path), f"not valid TOML: {exc}") from None
        return cls.from_mapping(data, str(path))

    def digest(self) -> str:
        """12 hex digits naming exactly this recipe (and this build procedure)."""
        text = json.dumps({"suite": self.suite, "packages": sorted(self.packages),
                           "prune": sorted({*DEFAULT_PRUNE, *self.prune}),
                           "env": BASE_ENV, "build": _BUILD_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        """``v6flow/debian-base:<suite>-<digest>``."""
        return f"{BASE_REPOSITORY}:{self.suite}-{self.digest()}"


def _relative_glob(pattern: object) -> bool:
    if not isinstance(pattern, str) or not pattern or pattern.startswith("/"):
        return False
    return ".." not in PurePosixPath(pattern).parts


def ensure_debian_base(recipe: DebianRecipe, *, client: docker.DockerClient | None = None,
                       cache_dir: Path | None = None, mirror: str = DEFAULT_MIRROR,
                       progress: Progress | None = None) -> str:
    """Return the recipe's base tag, debootstrapping and importing it first when missing.

    Raises:
        EngineUnavailable: no Docker engine.
        ImageBuildError: debootstrap is missing, we are not root, a package cannot be
            fetched, or the import failed.
    """
    from v6flow.images import default_cache_dir

    client = client or docker_client()
    if image_labels(client, recipe.tag) is not None:
        return recipe.tag
    cache = cache_dir or default_cache_dir()
    with _wheelhouse.cache_lock(cache, f"debian-{recipe.digest()}"):
        if image_labels(client, recipe.tag) is None:  # another process may have built it
            rootfs = _ensure_rootfs(recipe, cache, mirror, progress or (lambda _msg: None))
            (progress or (lambda _msg: None))(f"importing {rootfs} as {recipe.tag}")
            _import(rootfs, recipe.tag)
    return recipe.tag


def _ensure_rootfs(recipe: DebianRecipe, cache: Path, mirror: str, say: Progress) -> Path:
    final = cache / "rootfs" / f"debian-{recipe.suite}-{recipe.digest()}"
    if (final / _DONE_MARKER).is_file():
        say(f"reusing the root filesystem at {final}")
        return final
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed; install it with "
                              "`apt-get install debootstrap` (it builds the Debian root "
                              "filesystem without any registry)")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise ImageBuildError("debootstrap needs root: run this image build as root")
    partial = final.with_name(final.name + ".partial")
    for stale in (partial, final):
        if stale.exists():
            shutil.rmtree(stale)
    debs = (cache / "debs" / recipe.suite).resolve()
    debs.mkdir(parents=True, exist_ok=True)
    say(f"debootstrap {recipe.suite} (minbase + {', '.join(recipe.packages)}) from {mirror}")
    proc = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
         f"--include={','.join(recipe.packages)}", recipe.suite, str(partial), mirror],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise ImageBuildError(f"debootstrap failed with exit code {proc.returncode} "
                              f"(is {mirror} reachable, and are the package names right?)",
                              log_tail=tail)
    freed = prune_rootfs(partial, recipe.prune)
    say(f"removed {freed / 1e6:.0f} MB of documentation, translations and package lists")
    (partial / _DONE_MARKER).write_text(json.dumps({"recipe": recipe.digest(),
                                                    "mirror": mirror}) + "\n")
    partial.rename(final)
    return final


def prune_rootfs(rootfs: Path, extra: tuple[str, ...] = ()) -> int:
    """Delete :data:`DEFAULT_PRUNE` and ``extra`` (globs relative to ``/``) under ``rootfs``.

    Under ``usr/share/doc`` only the ``copyright`` files are kept.

    Returns:
        Bytes freed.
    """
    freed = 0
    root = rootfs.resolve()
    for pattern in (*DEFAULT_PRUNE, *extra):
        for path in sorted(root.glob(pattern)):
            folder = path.parent.resolve()
            if folder != root and root not in folder.parents:
                continue  # reached through a symlink that leaves the rootfs: never the host's
            freed += _remove(path)  # a symlink itself is unlinked, never followed
    docs = root / "usr/share/doc"
    if docs.is_dir():
        for path in sorted(docs.rglob("*"), reverse=True):
            if path.is_symlink() or path.is_file():
                if not fnmatch.fnmatch(path.name, "copyright"):
                    freed += _remove(path)
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return freed


def _remove(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        size = path.lstat().st_size
        path.unlink()
        return size
    if path.is_dir():
        size = sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
        shutil.rmtree(path)
        return size
    return 0


def _import(rootfs: Path, tag: str) -> None:
    """``tar -C rootfs -c . | docker import --change ENV… - tag``, streamed.

    Raises:
        ImageBuildError: tar or docker import failed (or the docker CLI is missing).
    """
    if shutil.which("docker") is None:
        raise ImageBuildError("the docker command-line client is needed to import the rootfs")
    changes = [arg for key, value in BASE_ENV.items() for arg in ("--change", f"ENV {key}={value}")]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--exclude", f"./{_DONE_MARKER}",
                            "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        imp = subprocess.run(["docker", "import", "--message", "v6flow debian base", *changes,
                              "-", tag], stdin=tar.stdout, capture_output=True, text=True,
                             check=False)
    finally:
        tar.stdout.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or imp.returncode != 0:
        raise ImageBuildError(f"importing {rootfs} as {tag} failed (tar exit {tar_rc}, "
                              f"docker exit {imp.returncode})", log_tail=imp.stderr.strip())


def build_debian_algorithm_image(path: str | os.PathLike[str], tag: str, *,
                                 client: docker.DockerClient | None = None,
                                 labels: Mapping[str, str] | None = None,
                                 progress: Progress | None = None, nocache: bool = False,
                                 cache_dir: Path | None = None,
                                 mirror: str = DEFAULT_MIRROR) -> str:
    """Build the algorithm image of a folder with a ``debian-image.toml`` and a Dockerfile.

    The Dockerfile starts with ``ARG BASE_IMAGE`` / ``FROM ${BASE_IMAGE}``; the base is the
    recipe's Debian image (made first when missing). The build has no network.

    Args:
        path: the algorithm folder (build context).
        tag: the image tag, e.g. ``v6flow/mean-r:0.1.0``.
        client: Docker client (default: :func:`v6flow.images.docker_client`).
        labels: extra image labels.
        progress: callback for progress lines.
        nocache: rebuild every Dockerfile step (the Debian base is reused).
        cache_dir: cache of root filesystems and .deb files (default ``~/.cache/v6flow``).
        mirror: Debian mirror debootstrap fetches from.

    Returns:
        The tag.

    Raises:
        ConfigurationError: the recipe is missing or wrong.
        ImageBuildError: debootstrap, the import or the docker build failed.
        EngineUnavailable: no Docker engine.
    """
    from v6flow.images import build_algorithm_image

    context = Path(path)
    recipe = DebianRecipe.from_file(context / RECIPE_FILE)
    client = client or docker_client()
    base = ensure_debian_base(recipe, client=client, cache_dir=cache_dir, mirror=mirror,
                              progress=progress)
    return build_algorithm_image(context, tag, base=base, client=client, labels=labels,
                                 progress=progress, nocache=nocache)


__all__ = [
    "BASE_REPOSITORY",
    "DEFAULT_PRUNE",
    "RECIPE_FILE",
    "DebianRecipe",
    "build_debian_algorithm_image",
    "ensure_debian_base",
    "prune_rootfs",
]
