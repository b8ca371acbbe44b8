"""Docker runtime of the node: images, network sidecars, algorithm containers, cleanup.

Every object carries labels (``v6flow.node``, ``v6flow.type``, ``v6flow.run_id``,
``v6flow.task_id``, ``v6flow.job_id``) so runs are found again after a restart and everything
of a node is removed at shutdown. Blocking SDK calls run in worker threads.

Network isolation: per job, a sidecar container with ``network_mode="none"`` forwards its
``127.0.0.1:8080`` to the node proxy's unix socket (and ``127.0.0.1:3128`` to the whitelist
proxy's); algorithm containers join the sidecar's network namespace
(``network_mode="container:<sidecar>"``) and see nothing but ``lo``.

Peer-to-peer (docs/p2p.md): a run whose image ``EXPOSE``s ports gets a sidecar of its own
(so runs of one job on one node never compete for a port), with a per-run folder
``<node dir>/p2p/<run id>`` mounted at ``/p2p``, where the node and the sidecar exchange the
connections :mod:`v6flow_node.relay` relays.

Spare sidecars (``spare_sidecars`` in node.yaml, default 1): job sidecars are all alike, so
the node keeps one started ahead; a new job takes it by renaming it to the job's sidecar name
instead of waiting ~0.5 s for one to start, and the next spare starts once a job's sidecar is
released. A spare serves one job only and is removed with it.

The sidecar runs the node's own copy of ``v6flow/sidecar.py`` (stdlib only, mounted
read-only), so the image only needs python3 and never lags behind the node's protocol.

Least privilege (:mod:`v6flow_node.runtime.hardening`): both kinds of container run as an
unprivileged user without capabilities, with ``no-new-privileges``, a read-only root
filesystem and memory/PID/CPU limits (``limits`` in node.yaml for algorithms, small fixed ones
for sidecars). TEMPORARY_FOLDER is a per-job host folder ``<node dir>/scratch/job-<id>``
owned by the container user, removed with the job's sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import structlog
from docker.models.containers import Container

from v6flow import sidecar as sidecar_module
from v6flow.sidecar import READY_LINE
from v6flow_node.errors import ContainerLost, ContainerStartError, ImageUnavailable
from v6flow_node.runtime.dbforward import ForwardPlan
from v6flow_node.runtime.hardening import (
    RUNTIME_ENV,
    SIDECAR_ENV,
    SIDECAR_LIMITS,
    PidLimitWatch,
    container_options,
    exit_notes,
)
from v6flow_node.runtime.identity import give_to_algorithm
from v6flow_node.runtime.workspace import PROXY_PORT, TEMPORARY_FOLDER
from v6flow_node.settings import Limits

log = structlog.get_logger(__name__)

LABEL_NODE = "v6flow.node"
LABEL_TYPE = "v6flow.type"
LABEL_RUN = "v6flow.run_id"
LABEL_TASK = "v6flow.task_id"
LABEL_JOB = "v6flow.job_id"

SIDECAR_SOCKET_DIR = "/proxy"
SIDECAR_P2P_DIR = "/p2p"
#: The node's own copy of :mod:`v6flow.sidecar` (stdlib only), mounted read-only and run as a
#: script: node and sidecar always speak the same protocol, whatever v6flow the image has.
SIDECAR_SCRIPT = Path(sidecar_module.__file__).resolve()
SIDECAR_SCRIPT_MOUNT = "/opt/v6flow-node/sidecar.py"
#: Where algorithm containers reach the whitelist proxy (squid's port, as in v4).
WHITELIST_PORT = 3128
#: The node's unix sockets in the proxy folder.
PROXY_SOCKET = "proxy.sock"
WHITELIST_SOCKET = "whitelist.sock"
_SIDECAR_READY_TIMEOUT = 20.0
_NOTE = "[v6flow node]"


@contextlib.contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Translate docker SDK errors into :class:`ContainerStartError`, once, at the boundary."""
    try:
        yield
    except docker.errors.DockerException as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        raise ContainerStartError(what, str(reason)) from exc


@dataclass(frozen=True)
class AlgorithmSpec:
    """Everything needed to create one algorithm container."""

    run_id: int
    task_id: int
    job_id: int
    image: str
    environment: dict[str, str]
    volumes: dict[str, dict[str, str]]


@dataclass(frozen=True)
class ExposedPort:
    """A port an image ``EXPOSE``s (TCP), with its ``LABEL p<port>`` value."""

    port: int
    label: str | None


@dataclass(frozen=True)
class PeerEndpoint:
    """What the relay needs of a run's own sidecar: its p2p folder and the exposed ports."""

    folder: Path
    ports: tuple[ExposedPort, ...]


@dataclass
class _Sidecar:
    container: Container
    users: set[int] = field(default_factory=set)


@dataclass
class _RunSidecar:
    container: Container
    endpoint: PeerEndpoint


def exposed_ports(attrs: dict[str, object]) -> list[ExposedPort]:
    """The TCP ports of an image's inspect data (``Config.ExposedPorts``/``Config.Labels``).

    ``EXPOSE 8888`` with ``LABEL p8888="exchange"`` gives ``ExposedPort(8888, "exchange")``;
    UDP ports and unparsable entries are left out.
    """
    config = attrs.get("Config") or {}
    assert isinstance(config, dict)
    labels = config.get("Labels") or {}
    found = []
    for key in sorted(config.get("ExposedPorts") or {}):
        number, _, protocol = str(key).partition("/")
        if protocol not in ("", "tcp") or not number.isdigit() or not 1 <= int(number) <= 65535:
            continue
        label = labels.get(f"p{number}") if isinstance(labels, dict) else None
        found.append(ExposedPort(int(number), str(label) if label else None))
    return sorted(found, key=lambda p: p.port)


class DockerRuntime:
    """Docker operations of one node (thread-safe where called from ``asyncio.to_thread``)."""

    def __init__(self, *, node: str, proxy_dir: Path, sidecar_image: str,
                 limits: Limits | None = None, scratch_dir: Path | None = None,
                 client: docker.DockerClient | None = None,
                 database_forwards: ForwardPlan | None = None, whitelist: bool = False,
                 peer_to_peer: bool = False, spare_sidecars: int = 0) -> None:
        """Connect to the engine.

        Args:
            node: docker-safe node name used in container names and labels.
            proxy_dir: host folder holding the proxy's unix socket ``proxy.sock``.
            sidecar_image: image with python3 and v6flow (the base image).
            limits: memory/PID/CPU limits of algorithm containers (defaults of ``Limits``).
            scratch_dir: host folder of the per-job TEMPORARY_FOLDERs (default: ``scratch``
                next to ``proxy_dir``, i.e. in the node's folder).
            client: optional docker client (``docker.from_env()`` otherwise).
            database_forwards: database servers each sidecar also forwards to (their node
                sockets are in ``proxy_dir``; :mod:`v6flow_node.runtime.dbforward`).
            whitelist: the node runs a whitelist proxy: give containers ``HTTP_PROXY``.
            peer_to_peer: runs whose image exposes ports get their own p2p sidecar.
            spare_sidecars: job sidecars kept started ahead (see :meth:`fill_spares`).
        """
        self.node = node
        self.proxy_dir = proxy_dir
        self.sidecar_image = sidecar_image
        self.limits = limits or Limits.model_validate({})
        self.scratch_dir = scratch_dir or proxy_dir.parent / "scratch"
        self.client = client or docker.from_env(timeout=60)
        self.database_forwards = database_forwards or ForwardPlan()
        self.whitelist = whitelist
        self.peer_to_peer = peer_to_peer
        self.p2p_dir = proxy_dir.parent / "p2p"
        self._sidecars: dict[int, _Sidecar] = {}
        self._run_sidecars: dict[int, _RunSidecar] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._pid_watch = PidLimitWatch()
        self.spare_sidecars = spare_sidecars
        self._spares: list[Container] = []
        self._filling: asyncio.Task[None] | None = None
        self._spare_serial = 0
        #: inspect data of images just checked by ensure_image (read once by exposed_ports)
        self._image_attrs: dict[str, dict[str, Any]] = {}
        #: ids of runs whose algorithm containers exist (None: not listed yet); only these
        #: can be adopted, so other runs need no look-up
        self._leftover_runs: set[int] | None = None

    # --- naming ---------------------------------------------------------------------------
    def labels(self, kind: str, **extra: int) -> dict[str, str]:
        """Labels for an object of this node; ``extra`` maps run_id/task_id/job_id."""
        out = {LABEL_NODE: self.node, LABEL_TYPE: kind}
        names = {"run_id": LABEL_RUN, "task_id": LABEL_TASK, "job_id": LABEL_JOB}
        out.update({names[k]: str(v) for k, v in extra.items()})
        return out

    def container_name(self, run_id: int) -> str:
        """``v6flow-<node>-run-<run_id>``."""
        return f"v6flow-{self.node}-run-{run_id}"

    def job_scratch(self, job_id: int) -> Path:
        """Host folder mounted as TEMPORARY_FOLDER by the runs of one job on this node."""
        return self.scratch_dir / f"job-{job_id}"

    # --- images ---------------------------------------------------------------------------
    async def ensure_image(self, image: str, *, require_pull: bool, timeout: float) -> str:
        """Make ``image`` available and say where it came from (``pulled``/``local``).

        Raises:
            ImageUnavailable: the pull failed (and, when allowed, no local image exists).
        """
        if not require_pull and await asyncio.to_thread(self._local_image_exists, image):
            return "local"
        try:
            await asyncio.wait_for(asyncio.to_thread(self.client.images.pull, image),
                                   timeout=timeout)
            return "pulled"
        except TimeoutError as exc:
            reason = f"pull did not finish within {timeout:g} s"
            raise ImageUnavailable(image, self._pull_hint(reason, require_pull)) from exc
        except docker.errors.DockerException as exc:
            reason = str(getattr(exc, "explanation", None) or exc)
            raise ImageUnavailable(image, self._pull_hint(f"pull failed: {reason}",
                                                          require_pull)) from exc

    @staticmethod
    def _pull_hint(reason: str, require_pull: bool) -> str:
        if require_pull:
            return (f"{reason}; the node policy require_algorithm_pull is true, so a local "
                    "image is not used")
        return f"{reason}; and no local image with this name exists on the node"

    def exposed_ports(self, image: str) -> list[ExposedPort]:
        """The TCP ports ``image`` (available locally) exposes, with their labels."""
        attrs = self._image_attrs.pop(image, None)  # read by ensure_image just before
        if attrs is None:
            try:
                attrs = self.client.images.get(image).attrs
            except docker.errors.DockerException:
                return []
        return exposed_ports(attrs)

    def _local_image_exists(self, image: str) -> bool:
        try:
            found = self.client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        self._image_attrs[image] = found.attrs
        return True

    # --- sidecars -------------------------------------------------------------------------
    async def acquire_sidecar(self, job_id: int, run_id: int) -> Container:
        """The running network sidecar of ``job_id`` (started if needed), used by ``run_id``.

        Raises:
            ContainerStartError: the sidecar could not be started or did not become ready.
        """
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            sidecar = self._sidecars.get(job_id)
            if sidecar is None:
                container = await self._take_spare(job_id)
                if container is None:
                    container = await asyncio.to_thread(self._start_sidecar, job_id)
                sidecar = self._sidecars[job_id] = _Sidecar(container)
            sidecar.users.add(run_id)
            return sidecar.container

    # --- spare sidecars -------------------------------------------------------------------
    # A job's sidecar is the same for every job (the node's sockets and forwards), only its
    # name differs: a few are started ahead, and a job takes one by renaming it to its own
    # name (a rename is ~10 ms; starting one took ~0.5 s before the algorithm could start).
    # Each spare serves exactly one job and is removed with it, like any job sidecar. The
    # next spare is started when a job's sidecar is released, not while a job starts.

    def fill_spares(self) -> None:
        """Start spares in the background until ``spare_sidecars`` are ready (async context)."""
        if self.spare_sidecars <= 0 or (self._filling is not None and not self._filling.done()):
            return
        self._filling = asyncio.get_running_loop().create_task(self._fill(), name="spares")

    async def spares_ready(self) -> list[Container]:
        """Wait for the spares being started; the ready ones."""
        if self._filling is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._filling)
        return list(self._spares)

    async def _fill(self) -> None:
        while len(self._spares) < self.spare_sidecars:
            self._spare_serial += 1
            name = f"v6flow-{self.node}-sidecar-spare-{self._spare_serial}"
            try:
                container = await asyncio.to_thread(self._start_sidecar, 0, name=name)
            except ContainerStartError as exc:
                log.warning("spare sidecar could not start; jobs start their own",
                            error=exc.reason)
                return
            self._spares.append(container)

    async def _take_spare(self, job_id: int) -> Container | None:
        """A ready spare renamed to ``job_id``'s sidecar (None when there is none)."""
        while self._spares:
            container = self._spares.pop(0)
            try:
                await asyncio.to_thread(self._adopt_spare, container, job_id)
            except docker.errors.DockerException as exc:  # gone meanwhile: try the next
                log.warning("spare sidecar unusable", error=str(exc))
                with contextlib.suppress(docker.errors.DockerException):
                    await asyncio.to_thread(container.remove, force=True)
                continue
            return container
        return None

    def _adopt_spare(self, container: Container, job_id: int) -> None:
        name = self._sidecar_name(job_id)
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(name).remove(force=True)  # a dead one of an old process
        container.rename(name)
        container.reload()
        if container.status != "running":
            raise docker.errors.NotFound(f"spare sidecar {name} is {container.status}")

    async def release_sidecar(self, job_id: int, run_id: int) -> None:
        """Drop ``run_id``'s use; the job's last run on this node removes sidecar and volume."""
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            sidecar = self._sidecars.get(job_id)
            if sidecar is None:
                return
            sidecar.users.discard(run_id)
            if sidecar.users:
                return
            del self._sidecars[job_id]
            await asyncio.to_thread(self._remove_job_objects, job_id, sidecar.container)
        self.fill_spares()  # after the run, so the next spare never slows a starting one

    def _sidecar_name(self, job_id: int) -> str:
        return f"v6flow-{self.node}-sidecar-job-{job_id}"

    def _sidecar_command(self, *, p2p: bool) -> list[str]:
        command = ["python", SIDECAR_SCRIPT_MOUNT, "--listen", f"127.0.0.1:{PROXY_PORT}",
                   "--socket", f"{SIDECAR_SOCKET_DIR}/{PROXY_SOCKET}"]
        if self.whitelist:
            command += ["--forward",
                        f"127.0.0.1:{WHITELIST_PORT}={SIDECAR_SOCKET_DIR}/{WHITELIST_SOCKET}"]
        command += self.database_forwards.sidecar_args(SIDECAR_SOCKET_DIR)
        if p2p:
            command += ["--p2p", SIDECAR_P2P_DIR]
        return command

    def _start_sidecar(self, job_id: int, *, run_id: int | None = None,
                       p2p_folder: Path | None = None, name: str | None = None) -> Container:
        """Start the job's shared sidecar, or (``run_id``) a run's own p2p sidecar, or
        (``name``) a spare (no job label: its name says which job took it)."""
        spare = name is not None
        if name is not None:
            labels = self.labels("sidecar")
        elif run_id is None:
            name, labels = self._sidecar_name(job_id), self.labels("sidecar", job_id=job_id)
        else:
            name = f"v6flow-{self.node}-sidecar-run-{run_id}"
            labels = self.labels("sidecar", job_id=job_id, run_id=run_id)
        volumes = {str(self.proxy_dir): {"bind": SIDECAR_SOCKET_DIR, "mode": "ro"},
                   str(SIDECAR_SCRIPT): {"bind": SIDECAR_SCRIPT_MOUNT, "mode": "ro"}}
        if p2p_folder is not None:
            volumes[str(p2p_folder)] = {"bind": SIDECAR_P2P_DIR, "mode": "rw"}
        with contextlib.suppress(docker.errors.NotFound):
            old = self.client.containers.get(name)
            if old.status == "running" and run_id is None and not spare:
                return old  # left by a previous node process: the socket path is the same
            old.remove(force=True)
        with docker_errors(f"the network sidecar {name} (image {self.sidecar_image})"):
            # create + start (not run): run() would try to pull a missing image
            container = self.client.containers.create(
                self.sidecar_image, self._sidecar_command(p2p=p2p_folder is not None),
                extra_hosts=self.database_forwards.sidecar_hosts() or None,
                name=name, detach=True, network_mode="none",
                labels=labels, environment=SIDECAR_ENV, volumes=volumes,
                **container_options(SIDECAR_LIMITS, tmp=False),
            )
            container.start()
            deadline = time.monotonic() + _SIDECAR_READY_TIMEOUT
            while time.monotonic() < deadline:
                output = container.logs().decode("utf-8", "replace")
                if READY_LINE in output:
                    return container
                container.reload()
                if container.status not in ("created", "running"):
                    break
                time.sleep(0.03)
            output = container.logs().decode("utf-8", "replace")
            container.remove(force=True)
        raise ContainerStartError(f"the network sidecar {name}",
                                  f"it did not become ready; its output: {output[-500:]!r}")

    def _remove_job_objects(self, job_id: int, sidecar: Container) -> None:
        with contextlib.suppress(docker.errors.DockerException):
            sidecar.remove(force=True)
        shutil.rmtree(self.job_scratch(job_id), ignore_errors=True)

    def _prepare_scratch(self, job_id: int) -> Path:
        """The job's TEMPORARY_FOLDER on the host: created once, owned by the container user."""
        folder = self.job_scratch(job_id)
        if not folder.is_dir():
            self.scratch_dir.mkdir(parents=True, exist_ok=True)
            self.scratch_dir.chmod(0o700)
            folder.mkdir(exist_ok=True)
            give_to_algorithm(folder, 0o700)
        return folder

    # --- algorithm containers -------------------------------------------------------------
    def start_algorithm(self, spec: AlgorithmSpec, sidecar: Container) -> Container:
        """Create and start a hardened algorithm container in the sidecar's network namespace.

        Raises:
            ContainerStartError: Docker refused (after one retry), with its explanation.
        """
        try:
            scratch = self._prepare_scratch(spec.job_id)
        except OSError as exc:
            raise ContainerStartError(f"the TEMPORARY_FOLDER of job {spec.job_id}",
                                      str(exc)) from exc
        volumes = {**spec.volumes, str(scratch): {"bind": TEMPORARY_FOLDER, "mode": "rw"}}
        environment = {**RUNTIME_ENV, **(proxy_environment() if self.whitelist else {}),
                       **spec.environment}
        ports = self.exposed_ports(spec.image) if self.peer_to_peer else []
        if ports:
            sidecar = self._start_run_sidecar(spec, ports)
        name = self.container_name(spec.run_id)
        last: docker.errors.DockerException | None = None
        for _attempt in (1, 2):
            try:
                container = self.client.containers.create(
                    spec.image, name=name, environment=environment, volumes=volumes,
                    labels=self.labels("algorithm", run_id=spec.run_id, task_id=spec.task_id,
                                       job_id=spec.job_id),
                    network_mode=f"container:{sidecar.id}", detach=True,
                    **container_options(self.limits, tmp=True),
                )
            except docker.errors.APIError as exc:
                last = exc
                if exc.status_code == 409:  # a container of that name is left: replace it
                    with contextlib.suppress(docker.errors.DockerException):
                        self.client.containers.get(name).remove(force=True)
                continue
            except docker.errors.DockerException as exc:
                last = exc
                continue
            try:
                container.start()
                self._watch_limits(container)
                return container
            except docker.errors.DockerException as exc:
                last = exc
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)
        self._remove_run_sidecar(spec.run_id)
        reason = str(getattr(last, "explanation", None) or last)
        raise ContainerStartError(f"container {name} from image {spec.image}", reason)

    def _start_run_sidecar(self, spec: AlgorithmSpec, ports: list[ExposedPort]) -> Container:
        """A sidecar of the run's own, with its p2p folder (the image exposes ``ports``).

        Raises:
            ContainerStartError: the folder or the sidecar could not be made.
        """
        folder = self.p2p_dir / str(spec.run_id)
        try:
            self.p2p_dir.mkdir(parents=True, exist_ok=True)
            self.p2p_dir.chmod(0o700)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            give_to_algorithm(folder, 0o700)
        except OSError as exc:
            raise ContainerStartError(f"the p2p folder of run {spec.run_id}", str(exc)) from exc
        container = self._start_sidecar(spec.job_id, run_id=spec.run_id, p2p_folder=folder)
        self._run_sidecars[spec.run_id] = _RunSidecar(
            container, PeerEndpoint(folder=folder, ports=tuple(ports)))
        return container

    def peer_endpoint(self, run_id: int) -> PeerEndpoint | None:
        """The p2p folder and exposed ports of a run with its own sidecar (None otherwise)."""
        own = self._run_sidecars.get(run_id)
        return own.endpoint if own is not None else None

    def _remove_run_sidecar(self, run_id: int) -> None:
        own = self._run_sidecars.pop(run_id, None)
        if own is None:
            return
        with contextlib.suppress(docker.errors.DockerException):
            own.container.remove(force=True)
        shutil.rmtree(own.endpoint.folder, ignore_errors=True)

    def _watch_limits(self, container: Container) -> None:
        """Start watching a running container's PID limit (see :class:`PidLimitWatch`)."""
        with contextlib.suppress(docker.errors.DockerException):
            container.reload()
            self._pid_watch.watch(str(container.id), int(container.attrs["State"]["Pid"] or 0))

    def list_leftover_runs(self) -> set[int]:
        """List (once) the runs whose algorithm containers an earlier node process left."""
        if self._leftover_runs is None:
            found = self.client.containers.list(all=True, ignore_removed=True, filters={
                "label": [f"{LABEL_NODE}={self.node}", f"{LABEL_TYPE}=algorithm"]})
            labels = [(c.labels or {}).get(LABEL_RUN, "") for c in found]
            self._leftover_runs = {int(label) for label in labels if label.isdigit()}
        return self._leftover_runs

    def find_run_container(self, run_id: int) -> Container | None:
        """The container of ``run_id`` left by an earlier node process, if one exists (any
        state). This process's own containers are never looked up: only the runs listed once
        at start (:meth:`list_leftover_runs`) can have one."""
        leftovers = self.list_leftover_runs()
        if run_id not in leftovers:
            return None
        leftovers.discard(run_id)
        found = self.client.containers.list(all=True, ignore_removed=True, filters={"label": [
            f"{LABEL_NODE}={self.node}", f"{LABEL_RUN}={run_id}", f"{LABEL_TYPE}=algorithm"]})
        if found and found[0].status == "running":
            self._watch_limits(found[0])  # adopted after a restart
        return found[0] if found else None

    @staticmethod
    def wait(container: Container) -> int:
        """Block until the container exits; return its exit code (no polling).

        Raises:
            ContainerLost: the container vanished or the engine connection broke.
        """
        try:
            result = container.wait()
        except (docker.errors.DockerException, OSError,
                requests.exceptions.RequestException) as exc:
            raise ContainerLost(str(container.name), str(exc)) from exc
        return int(result.get("StatusCode", -1))

    @staticmethod
    def follow_logs(container: Container, on_line: Callable[[str], None]) -> None:
        """Call ``on_line`` for every log line while the container runs (blocking)."""
        pending = ""
        with contextlib.suppress(docker.errors.DockerException):
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                pending += chunk.decode("utf-8", "replace")
                *lines, pending = pending.split("\n")
                for line in lines:
                    on_line(line)
        if pending:
            on_line(pending)

    def full_logs(self, container: Container) -> str:
        """The complete stdout+stderr of an exited container, then the node's note on each
        limit that stopped it (``out of memory (limit 256 MiB): …``, ``PID limit reached``).
        """
        try:
            text = str(container.logs(stdout=True, stderr=True).decode("utf-8", "replace"))
        except docker.errors.DockerException as exc:
            text = f"(container logs unavailable: {exc})"
        pid_limit_hit = self._pid_watch.hit(str(container.id))
        try:
            container.reload()
            notes = exit_notes(container.attrs, pid_limit_hit=pid_limit_hit)
        except docker.errors.DockerException:
            notes = exit_notes({}, pid_limit_hit=pid_limit_hit)
        if notes and text and not text.endswith("\n"):
            text += "\n"
        return text + "\n".join(f"{_NOTE} {note}" for note in notes)

    @staticmethod
    def kill(container: Container) -> None:
        """Kill a container; a container that already stopped is fine."""
        with contextlib.suppress(docker.errors.DockerException):
            container.kill()

    def remove(self, container: Container) -> None:
        """Remove a container (forced), and the run's own sidecar if it has one."""
        self._pid_watch.forget(str(container.id))
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
        run_id = (container.labels or {}).get(LABEL_RUN, "")
        if run_id.isdigit():
            self._remove_run_sidecar(int(run_id))

    # --- cleanup --------------------------------------------------------------------------
    async def stop_spares(self) -> None:
        """Start no more spares and wait for one being started (so that
        :meth:`remove_everything` finds it)."""
        self.spare_sidecars = 0
        if self._filling is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._filling),
                                       timeout=_SIDECAR_READY_TIMEOUT + 10)

    def remove_everything(self) -> None:
        """Remove every container, network and volume labelled with this node, and every
        job's TEMPORARY_FOLDER."""
        selector: dict[str, str | list[str] | bool] = {"label": [f"{LABEL_NODE}={self.node}"]}
        containers = self.client.containers.list(all=True, filters=selector,
                                                 ignore_removed=True)
        # Algorithm containers first: they live in a sidecar's namespace.
        containers.sort(key=lambda c: c.labels.get(LABEL_TYPE) == "sidecar")
        for container in containers:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        for network in self.client.networks.list(filters=selector):
            with contextlib.suppress(docker.errors.DockerException):
                network.remove()
        for volume in self.client.volumes.list(filters=selector):
            with contextlib.suppress(docker.errors.DockerException):
                volume.remove(force=True)
        shutil.rmtree(self.scratch_dir, ignore_errors=True)
        shutil.rmtree(self.p2p_dir, ignore_errors=True)
        self._sidecars.clear()
        self._run_sidecars.clear()
        self._spares.clear()


def proxy_environment() -> dict[str, str]:
    """``HTTP_PROXY`` and friends for a node with a whitelist (plain values, as v4 decodes
    them to themselves). Loopback (the node API proxy, peer addresses) is never proxied."""
    proxy = f"http://127.0.0.1:{WHITELIST_PORT}"
    no_proxy = "localhost,127.0.0.1"
    return {"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy,
            "https_proxy": proxy, "NO_PROXY": no_proxy, "no_proxy": no_proxy}
