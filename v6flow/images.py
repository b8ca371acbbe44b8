"""Offline builds of the v6flow base image and of algorithm images (host side).

The base image needs no registry at all:

1. ``debootstrap --variant=minbase`` makes a Debian bookworm rootfs with python3 (cached);
2. ``tar | docker import`` turns it into ``v6flow/rootfs:bookworm``;
3. a ``docker build`` with ``network_mode="none"`` creates ``/opt/venv`` and installs
   ``v6flow[data]`` from a wheelhouse made on the host (``/opt/wheels`` stays in the image).

The flow base image (``v6flow/flow-base``) adds what a flow needs to run as a central task in
a node container (:mod:`v6flow.algorithm.central`): Prefect (wheels fetched on the host), a
migrated Prefect home at ``/opt/v6flow/prefect-home`` and the ``v6flow-flows`` and
``prefect-v6flow`` distributions of this checkout (``flows/`` and ``blocks/``, without the flows'
``partial/`` packages), installed in the venv; their files also stay at the repository's paths
under ``/opt/v6flow/central`` for the Prefect deployments' entrypoints. The images in ``flows/``
build on it.

Algorithm images are ordinary ``docker build`` contexts whose Dockerfile starts with
``ARG BASE_IMAGE=<default>`` / ``FROM ${BASE_IMAGE}`` (the default names the base it needs;
a v6flow base is built when missing or stale) and installs its package with
``pip install --no-index --find-links /opt/wheels <pkg>``. Wheels the package needs beyond the
base can be put in a ``wheels/`` folder of the build context, or named with
``requirements=[...]``: their wheels are then fetched on the host (cached) and added to
``wheels/`` of a staged copy of the context (the Dockerfile copies ``wheels/`` to
``/opt/wheels``, as tests/algorithms/v6compat does).

Examples:
    >>> from v6flow.images import ensure_base_image, build_algorithm_image
    >>> ensure_base_image()                                    # doctest: +SKIP
    'v6flow/base:0.1.0'
    >>> build_algorithm_image("flows/v6flow_flows/summary",
    ...                       "v6flow/summary:latest")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import v6flow
from v6flow._images import engine as _engine
from v6flow._images import rootfs as _rootfs
from v6flow._images import wheelhouse as _wheelhouse
from v6flow._images.engine import docker_client, image_labels
from v6flow.errors import ImageBuildError

if TYPE_CHECKING:
    import docker

BASE_IMAGE = f"v6flow/base:{v6flow.__version__}"
FLOW_BASE_IMAGE = f"v6flow/flow-base:{v6flow.__version__}"
ROOTFS_IMAGE = "v6flow/rootfs:bookworm"
#: Labels every image built here carries (``v6flow.image`` is ``base`` or ``algorithm``).
LABEL_IMAGE = "v6flow.image"
LABEL_SOURCE_HASH = "v6flow.source_hash"
LABEL_DEPS_HASH = "v6flow.deps_hash"
LABEL_VERSION = "v6flow.version"

Progress = Callable[[str], None]

_BASE_DOCKERFILE = """\
FROM {rootfs}
ENV VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PYTHONUNBUFFERED=1 \\
    LANG=C.UTF-8 \\
    PIP_NO_INDEX=1 \\
    PIP_FIND_LINKS=/opt/wheels \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
COPY deps/ /opt/wheels/
RUN pip install --no-index --find-links /opt/wheels -r /opt/wheels/{requirements}
COPY own/ /opt/wheels/
RUN pip install --no-index --find-links /opt/wheels "v6flow[data]=={version}" \\
 && python -c "import v6flow, jwt, httpx, pandas, pyarrow"
WORKDIR /
"""


_FLOW_BASE_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY wheels/ /opt/wheels/
RUN pip install --no-index --find-links /opt/wheels --no-deps -r /opt/wheels/{requirements} \\
 && mkdir -p {prefect_home} \\
 && PREFECT_HOME={prefect_home} PREFECT_SERVER_ANALYTICS_ENABLED=false \\
    prefect server database upgrade -y >/dev/null \\
 && test -f {prefect_home}/prefect.db
COPY central/ /opt/v6flow/central/
RUN cp -r /opt/v6flow/central /opt/v6flow/flow-dists \\
 && pip install --no-index --find-links /opt/wheels --no-deps {distributions} \\
 && rm -rf /opt/v6flow/flow-dists \\
 && python -c "import v6flow_flows.parameters, prefect_v6flow, v6flow.prefect"
"""
#: Requirement file of the flow base image (written into its ``wheels/``).
FLOW_REQUIREMENTS_FILE = "v6flow-flow-requirements.txt"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/v6flow`` (or ``~/.cache/v6flow``): rootfs and wheels live here."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "v6flow"


def build_base_image(*, tag: str = BASE_IMAGE, cache_dir: Path | None = None,
                     client: docker.DockerClient | None = None,
                     progress: Progress | None = None, nocache: bool = False) -> str:
    """Build the base image offline: debootstrap rootfs → import → venv with v6flow[data].

    Args:
        tag: Tag of the base image.
        cache_dir: Where the rootfs and wheels are cached (default :func:`default_cache_dir`).
        client: Docker client (default :func:`docker_client`).
        progress: Callback for progress lines (the CLI prints them).
        nocache: Rebuild every Dockerfile step.

    Returns:
        The tag.

    Raises:
        EngineUnavailable: no Docker engine.
        ImageBuildError: debootstrap, pip (on the host) or the docker build failed.
        ConfigurationError: not run from a source checkout of v6flow.
    """
    cache = cache_dir or default_cache_dir()
    client = client or docker_client()
    with _wheelhouse.cache_lock(cache, "base-image"):
        _build_base_locked(client, tag=tag, cache=cache, progress=progress, nocache=nocache)
    return tag


def _build_base_locked(client: docker.DockerClient, *, tag: str, cache: Path,
                       progress: Progress | None, nocache: bool) -> None:
    """The base build itself; the caller holds the ``base-image`` cache lock."""
    say = progress or (lambda _msg: None)
    house = _wheelhouse.ensure_wheelhouse(cache, progress=say)
    if image_labels(client, ROOTFS_IMAGE) is None:
        rootfs = _rootfs.ensure_rootfs(cache, progress=say)
        say(f"importing {rootfs} as {ROOTFS_IMAGE}")
        _rootfs.import_rootfs(rootfs, ROOTFS_IMAGE)
    with tempfile.TemporaryDirectory(prefix="v6flow-base-", dir=cache) as tmp:
        context = Path(tmp)
        _wheelhouse.link_tree(house.deps, context / "deps")
        _wheelhouse.link_tree(house.own, context / "own")
        (context / "Dockerfile").write_text(_BASE_DOCKERFILE.format(
            rootfs=ROOTFS_IMAGE, requirements=_wheelhouse.REQUIREMENTS_FILE,
            version=v6flow.__version__,
        ))
        say(f"docker build {tag} (offline, network none)")
        _engine.stream_build(
            client, context=context, tag=tag, buildargs={}, network_mode="none",
            nocache=nocache, progress=say,
            labels={LABEL_IMAGE: "base", LABEL_VERSION: v6flow.__version__,
                    LABEL_SOURCE_HASH: house.source_hash, LABEL_DEPS_HASH: house.deps_hash},
        )


def _built_from_checkout(client: docker.DockerClient, tag: str,
                         expected: Callable[[Path], Mapping[str, str]]) -> bool:
    """True when ``tag`` exists and carries the labels ``expected(checkout root)``.

    Outside a source checkout (v6flow installed from a wheel) existence is enough.
    """
    labels = image_labels(client, tag)
    if labels is None:
        return False
    try:
        root = _wheelhouse.source_root()
    except v6flow.errors.ConfigurationError:
        return True
    return all(labels.get(key) == value for key, value in expected(root).items())


def base_image_is_current(client: docker.DockerClient, tag: str = BASE_IMAGE) -> bool:
    """True when ``tag`` exists and was built from the sources of this checkout."""
    return _built_from_checkout(client, tag, lambda root: {
        LABEL_SOURCE_HASH: _wheelhouse.source_hash(root),
        LABEL_DEPS_HASH: _wheelhouse.deps_hash(root)})


def ensure_base_image(*, tag: str = BASE_IMAGE, cache_dir: Path | None = None,
                      client: docker.DockerClient | None = None,
                      progress: Progress | None = None) -> str:
    """Return ``tag``, building the base image first if it is missing or outdated.

    Raises:
        EngineUnavailable: no Docker engine.
        ImageBuildError: the build failed.
    """
    client = client or docker_client()
    if base_image_is_current(client, tag):
        return tag
    cache = cache_dir or default_cache_dir()
    with _wheelhouse.cache_lock(cache, "base-image"):
        if not base_image_is_current(client, tag):  # another process may have built it
            _build_base_locked(client, tag=tag, cache=cache, progress=progress, nocache=False)
    return tag


def flow_base_is_current(client: docker.DockerClient, tag: str = FLOW_BASE_IMAGE) -> bool:
    """True when ``tag`` exists and was built from this checkout's flows, blocks and base."""
    return _built_from_checkout(client, tag, lambda root: {
        LABEL_SOURCE_HASH: _flow_base_hash(client, root)})


def _flow_base_hash(client: docker.DockerClient, root: Path) -> str:
    base = str(client.images.get(BASE_IMAGE).id)
    return _wheelhouse.flow_sources_hash(root, salt=base)


def ensure_flow_base_image(*, tag: str = FLOW_BASE_IMAGE, cache_dir: Path | None = None,
                           client: docker.DockerClient | None = None,
                           progress: Progress | None = None) -> str:
    """Return ``tag``, building the flow base (base + Prefect + flows) if missing or stale.

    Raises:
        EngineUnavailable: no Docker engine.
        ImageBuildError: the build failed.
        ConfigurationError: not run from a source checkout (the flows are part of it).
    """
    client = client or docker_client()
    ensure_base_image(client=client, cache_dir=cache_dir, progress=progress)
    if flow_base_is_current(client, tag):
        return tag
    say = progress or (lambda _msg: None)
    cache = cache_dir or default_cache_dir()
    root = _wheelhouse.source_root()
    with _wheelhouse.cache_lock(cache, "flow-base-image"):
        if flow_base_is_current(client, tag):
            return tag
        requirements = _wheelhouse.flow_requirements(root)
        wheels = _wheelhouse.extra_wheels(cache, requirements, say, no_deps=True)
        with tempfile.TemporaryDirectory(prefix="v6flow-flow-base-", dir=cache) as tmp:
            context = Path(tmp)
            _wheelhouse.link_tree(wheels, context / "wheels")
            (context / "wheels" / FLOW_REQUIREMENTS_FILE).write_text(
                "\n".join(requirements) + "\n")
            _wheelhouse.stage_flow_sources(root, context / "central")
            (context / "Dockerfile").write_text(_FLOW_BASE_DOCKERFILE.format(
                requirements=FLOW_REQUIREMENTS_FILE, prefect_home="/opt/v6flow/prefect-home",
                distributions=" ".join(f"/opt/v6flow/flow-dists/{folder}"
                                       for folder in _wheelhouse.FLOW_DISTRIBUTIONS)))
            say(f"docker build {tag} (offline, network none)")
            _engine.stream_build(
                client, context=context, tag=tag, buildargs={"BASE_IMAGE": BASE_IMAGE},
                network_mode="none", nocache=False, progress=say,
                labels={LABEL_IMAGE: "flow-base", LABEL_VERSION: v6flow.__version__,
                        LABEL_SOURCE_HASH: _flow_base_hash(client, root)},
            )
    return tag


def dockerfile_base(path: str | os.PathLike[str]) -> str | None:
    """The default of ``ARG BASE_IMAGE=...`` in ``path/Dockerfile`` (None when it has none)."""
    for line in (Path(path) / "Dockerfile").read_text().splitlines():
        words = line.split()
        if len(words) == 2 and words[0].upper() == "ARG" and words[1].startswith("BASE_IMAGE="):
            return words[1].partition("=")[2].strip("\"'") or None
    return None


def ensure_known_base(base: str, *, client: docker.DockerClient | None = None,
                      progress: Progress | None = None) -> str:
    """Build a v6flow base (``base`` or ``flow-base``) when missing or stale; check others.

    Raises:
        ImageBuildError: ``base`` is not a v6flow base and is not present locally.
    """
    client = client or docker_client()
    if base == BASE_IMAGE:
        return ensure_base_image(client=client, progress=progress)
    if base == FLOW_BASE_IMAGE:
        return ensure_flow_base_image(client=client, progress=progress)
    if image_labels(client, base) is None:
        raise ImageBuildError(f"base image {base} is not present locally (builds never pull)")
    return base


def build_algorithm_image(path: str | os.PathLike[str], tag: str, *, base: str | None = None,
                          client: docker.DockerClient | None = None,
                          labels: Mapping[str, str] | None = None,
                          progress: Progress | None = None, nocache: bool = False,
                          network: bool = False, requirements: Sequence[str] = (),
                          cache_dir: Path | None = None) -> str:
    """Build an algorithm image from a folder whose Dockerfile does ``FROM ${BASE_IMAGE}``.

    Args:
        path: Build context containing a ``Dockerfile`` (and optionally ``wheels/``).
        tag: Image tag, e.g. ``v6flow/summary:latest``.
        base: Value of the ``BASE_IMAGE`` build argument; default: the Dockerfile's own
            ``ARG BASE_IMAGE=`` default (else the v6flow base). v6flow bases are built when
            missing or stale.
        client: Docker client (default :func:`docker_client`).
        labels: Extra image labels (``v6flow.image=algorithm`` is always set).
        progress: Callback for build output lines.
        nocache: Rebuild every step.
        network: Give the build network access (off: builds must be offline).
        requirements: Extra requirements (e.g. ``vantage6-algorithm-tools==4.15.2``): their
            wheels are fetched on the host (cached) and put in the context's ``wheels/``
            folder, next to whatever is already there.
        cache_dir: Cache for those wheels (default :func:`default_cache_dir`).

    Returns:
        The tag.

    Raises:
        ImageBuildError: no Dockerfile, the base is missing, or the build failed.
        EngineUnavailable: no Docker engine.
    """
    context = Path(path)
    if not (context / "Dockerfile").is_file():
        raise ImageBuildError(f"{context} has no Dockerfile")
    say = progress or (lambda _msg: None)
    client = client or docker_client()
    base = ensure_known_base(base or dockerfile_base(context) or BASE_IMAGE, client=client,
                             progress=say)
    all_labels: dict[str, Any] = {LABEL_IMAGE: "algorithm", **(labels or {})}
    build = functools.partial(
        _engine.stream_build, client, tag=tag, buildargs={"BASE_IMAGE": base}, labels=all_labels,
        network_mode=None if network else "none", nocache=nocache, progress=say,
    )
    if not requirements:
        build(context=context)
        return tag
    cache = cache_dir or default_cache_dir()
    wheels = _wheelhouse.extra_wheels(cache, requirements, say)
    with tempfile.TemporaryDirectory(prefix="v6flow-ctx-", dir=cache) as tmp:
        staged = Path(tmp) / "context"
        shutil.copytree(context, staged, ignore=shutil.ignore_patterns("__pycache__"))
        (staged / "wheels").mkdir(exist_ok=True)
        for wheel in wheels.glob("*.whl"):
            if not (staged / "wheels" / wheel.name).exists():
                _wheelhouse.link_file(wheel, staged / "wheels" / wheel.name)
        build(context=staged)
    return tag


__all__ = [
    "BASE_IMAGE",
    "FLOW_BASE_IMAGE",
    "ROOTFS_IMAGE",
    "base_image_is_current",
    "build_algorithm_image",
    "build_base_image",
    "default_cache_dir",
    "docker_client",
    "dockerfile_base",
    "ensure_base_image",
    "ensure_flow_base_image",
    "ensure_known_base",
    "flow_base_is_current",
    "image_labels",
]
