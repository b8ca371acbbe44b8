"""One run, start to finish: policy, image, token, files, container, live logs, report.

Reporting follows CONTRACT §4.4: ``started_at`` first, ``active`` once the container runs, then
one final PATCH with ``result``, the full ``log``, the status and ``finished_at``. Every failure
status comes with a log that says what failed (v4 only said "Container failed").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from docker.models.containers import Container

from v6flow import _blobstream as blobstream
from v6flow._retry import REPORT_RUN
from v6flow.crypto import Scheme
from v6flow.errors import (
    BadRequest,
    ClientError,
    DecryptionError,
    DeserializationError,
    EncryptionError,
    NotFound,
    ServerError,
)
from v6flow.schemas import RunOut, RunUpdate, is_blob_ref
from v6flow.status import RunStatus
from v6flow.wire import result_to_wire, utcnow
from v6flow_node.encryption import NodeEncryption, Reply
from v6flow_node.errors import ContainerLost, ContainerStartError, ImageUnavailable
from v6flow_node.policies import image_allowed
from v6flow_node.relay import PeerRelay, peer_session
from v6flow_node.runtime.docker import AlgorithmSpec, DockerRuntime
from v6flow_node.runtime.identity import give_to_algorithm
from v6flow_node.runtime.workspace import (
    Workspace,
    build_environment,
    create_workspace,
    database_volumes,
    existing_workspace,
    missing_databases,
)
from v6flow_node.server_link import ServerLink, embedded_task
from v6flow_node.settings import NodeSettings

log = structlog.get_logger(__name__)

_LOG_BATCH_SECONDS = 0.25
_LOG_BATCH_LINES = 100
_NOTE = "[v6flow node]"


@dataclass
class NodeContext:
    """What every run of this node shares."""

    settings: NodeSettings
    link: ServerLink
    runtime: DockerRuntime
    node_dir: Path
    node_name: str
    organization_id: int | None = None
    peers: PeerRelay | None = None
    #: End-to-end encryption (None: no key, as if ``encryption.enabled`` were false).
    e2e: NodeEncryption | None = None

    def encryption(self, task_collaboration: int) -> NodeEncryption:
        """The node's encryption, or a keyless one when none was set up."""
        return self.e2e or NodeEncryption(private_key=None,
                                          organization_id=self.organization_id or 0,
                                          collaboration_id=task_collaboration)


@dataclass
class RunHandle:
    """A run this node is handling; the daemon uses it to kill or stop it."""

    run_id: int
    task_id: int
    container: Container | None = None
    killed: bool = False
    stopping: bool = False
    #: The server answered 404 for the run: its task was deleted (see :func:`note_deleted`).
    deleted: bool = False
    #: When its container started (``time.monotonic()``; 0: not started by this process).
    started: float = 0.0


def note_deleted(handle: RunHandle) -> None:
    """Say, once, that the server no longer has this run (its task was deleted).

    Deleting a running task is a normal way to stop it: the node stops the container and
    logs this one line instead of a failure.
    """
    if not handle.deleted:
        handle.deleted = True
        log.info(f"run {handle.run_id} of task {handle.task_id} was deleted on the server; "
                 "container stopped", run_id=handle.run_id, task_id=handle.task_id)


async def _patch(ctx: NodeContext, handle: RunHandle, update: RunUpdate) -> None:
    """PATCH a run, retrying under :data:`~v6flow._retry.REPORT_RUN` while the server is
    unreachable or failing; a refusal is logged, a deleted run noted (never raised)."""
    try:
        await REPORT_RUN.acall(lambda: ctx.link.patch_run(handle.run_id, update))
    except NotFound:
        note_deleted(handle)
    except ClientError as exc:
        if isinstance(exc, BadRequest) and handle.killed:
            return  # killed: the server finished the run itself (CONTRACT §4.6)
        log.error("could not report run" if isinstance(exc, ServerError) else
                  "run report refused", run_id=handle.run_id, error=str(exc),
                  status=update.status.value if update.status else None)


async def report_failure(ctx: NodeContext, handle: RunHandle, status: RunStatus,
                         message: str) -> None:
    """Report a run as finished with a failure ``status``; ``message`` becomes its log."""
    log.info("run ended without container", run_id=handle.run_id, status=status.value,
             reason=message)
    await _patch(ctx, handle, RunUpdate(status=status, log=f"{_NOTE} {message}",
                                        finished_at=utcnow()))


async def execute_run(ctx: NodeContext, run: RunOut, handle: RunHandle) -> None:
    """Handle one open run (its task embedded) completely; every outcome is reported.

    Raises:
        DeserializationError: the run came without its task.
    """
    run_id = handle.run_id
    task = embedded_task(run)
    image, task_id, job_id = task.image, task.id, task.job_id or task.id
    structlog.contextvars.bind_contextvars(run_id=run_id, task_id=task_id)

    reply = ctx.encryption(task.collaboration.id).reply_for(run, task)
    existing = await asyncio.to_thread(ctx.runtime.find_run_container, run_id)
    if existing is not None:
        log.info("adopting a container left by an earlier node process")
        handle.container = existing
        try:
            await ctx.runtime.acquire_sidecar(job_id, run_id)
            await _supervise(ctx, handle, existing, existing_workspace(ctx.node_dir, run_id),
                             reply)
        finally:
            await ctx.runtime.release_sidecar(job_id, run_id)
        return

    decision = image_allowed(image, ctx.settings.policies.allowed_algorithms)
    if not decision.allowed:
        await report_failure(ctx, handle, RunStatus.NOT_ALLOWED, decision.reason)
        return
    missing = missing_databases(ctx.settings, [db.model_dump() for db in task.databases])
    if missing:
        await report_failure(ctx, handle, RunStatus.FAILED, missing)
        return
    # The network sidecar starts while the image, input and token are prepared.
    sidecar_task = asyncio.create_task(ctx.runtime.acquire_sidecar(job_id, run_id))
    try:
        await _prepare_and_run(ctx, run, handle, sidecar_task, job_id=job_id, task_id=task_id,
                               image=image, reply=reply)
    finally:
        with contextlib.suppress(Exception):
            await sidecar_task
        await ctx.runtime.release_sidecar(job_id, run_id)


async def _prepare_and_run(ctx: NodeContext, run: RunOut, handle: RunHandle,
                           sidecar_task: asyncio.Task[Container], *, job_id: int,
                           task_id: int, image: str, reply: Reply) -> None:
    """Image, input, token, files, then the container; failures are reported."""
    run_id = handle.run_id
    task = embedded_task(run)
    began = time.monotonic()
    try:
        await ctx.link.patch_run(run_id, RunUpdate(started_at=utcnow(),
                                                   status=RunStatus.INITIALIZING))
    except BadRequest as exc:  # finished meanwhile (killed, or a stale open-run list)
        log.info("run no longer open; not started", reason=exc.msg)
        return
    except NotFound:  # its task was deleted meanwhile
        log.info(f"run {run_id} of task {task_id} was deleted on the server; not started")
        return
    except ClientError as exc:
        log.warning("could not report the start", error=str(exc))
    try:
        source = await ctx.runtime.ensure_image(
            image, require_pull=ctx.settings.policies.require_algorithm_pull,
            timeout=ctx.settings.pull_timeout)
    except ImageUnavailable as exc:
        await report_failure(ctx, handle, RunStatus.NO_DOCKER_IMAGE, str(exc))
        return
    try:
        input_bytes = (b"" if _input_in_blob(run)
                       else ctx.encryption(task.collaboration.id).open_input(run, task))
    except DecryptionError as exc:
        await report_failure(ctx, handle, RunStatus.FAILED,
                             f"cannot decrypt the run input: {exc}")
        return
    except (EncryptionError, DeserializationError) as exc:
        await report_failure(ctx, handle, RunStatus.FAILED, f"cannot read the run input: {exc}")
        return
    try:
        token = await ctx.link.container_token(task_id, image)
    except ClientError as exc:
        await report_failure(ctx, handle, RunStatus.FAILED,
                             f"Could not obtain algorithm container token: {exc.msg}")
        return

    workspace = create_workspace(ctx.node_dir, run_id, input_bytes=input_bytes, token=token)
    if _input_in_blob(run):
        try:
            await _fetch_input(ctx, str(run.input), workspace)
        except (ClientError, DeserializationError) as exc:
            workspace.remove()
            await report_failure(ctx, handle, RunStatus.FAILED,
                                 f"cannot read the run input: {exc}")
            return
    env = build_environment(workspace=workspace, settings=ctx.settings,
                            task_databases=[db.model_dump() for db in task.databases])
    volumes = {str(workspace.host_dir): {"bind": workspace.container_dir, "mode": "rw"},
               **database_volumes(ctx.settings.databases)}
    spec = AlgorithmSpec(run_id=run_id, task_id=task_id, job_id=job_id, image=image,
                         environment=env, volumes=volumes)
    try:
        sidecar = await sidecar_task
        prepared = time.monotonic()
        container = await asyncio.to_thread(ctx.runtime.start_algorithm, spec, sidecar)
    except ContainerStartError as exc:
        workspace.remove()
        await report_failure(ctx, handle, RunStatus.START_FAILED, str(exc))
        return
    handle.container = container
    handle.started = time.monotonic()
    # The split: preparation (run report, image, token, files, sidecar) vs Docker's
    # create + start of the algorithm container.
    log.info("algorithm container started", image=image, image_source=source,
             seconds_to_start=round(handle.started - began, 3),
             seconds_preparing=round(prepared - began, 3),
             seconds_starting_container=round(handle.started - prepared, 3))
    if handle.killed or handle.stopping:
        ctx.runtime.kill(container)
    # ports, relay (v6flow_node/relay.py)
    async with peer_session(ctx, run_id=run_id, token=token):
        await _patch(ctx, handle, RunUpdate(status=RunStatus.ACTIVE))
        if handle.deleted:
            await asyncio.to_thread(ctx.runtime.kill, container)
        await _supervise(ctx, handle, container, workspace, reply)


async def _supervise(ctx: NodeContext, handle: RunHandle, container: Container,
                     workspace: Workspace, reply: Reply) -> None:
    """Wait for the container, stream its log, report the outcome and clean up."""
    try:
        streamer = asyncio.create_task(_stream_logs(ctx, handle, container))
        try:
            exit_code = await asyncio.to_thread(ctx.runtime.wait, container)
        except ContainerLost as exc:
            streamer.cancel()
            await report_failure(ctx, handle, RunStatus.UNKNOWN_ERROR, str(exc))
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(streamer, timeout=10)
        full_log = await asyncio.to_thread(ctx.runtime.full_logs, container)
        if handle.stopping:
            status = RunStatus.FAILED
            full_log += (f"\n{_NOTE} node {ctx.node_name} was stopped while this run was "
                         "active; its container was killed")
        elif handle.killed:
            status = RunStatus.KILLED
        elif exit_code == 0:
            status = RunStatus.COMPLETED
        else:
            status = RunStatus.CRASHED
            full_log += f"\n{_NOTE} algorithm container exited with code {exit_code}"
        if not ctx.settings.share_algorithm_logs:
            full_log = "Node does not allow sharing algorithm logs"
        if handle.deleted:
            return  # nothing to report to: said so once (note_deleted)
        exited = time.monotonic()
        log.info("run finished", status=status.value, exit_code=exit_code,
                 seconds_in_container=round(exited - handle.started, 3)
                 if handle.started else None)
        try:  # a killed run's result is not kept by the server: nothing to send
            result = None if handle.killed else await _result_field(ctx, workspace, reply)
        except (EncryptionError, DeserializationError) as exc:  # never in clear
            result, status = "", RunStatus.FAILED
            full_log += (f"\n{_NOTE} the result was not sent: it could not be encrypted for "
                         f"organization {reply.recipient}: {exc}")
        except ClientError as exc:  # the store refused the upload, or no public key came
            result, status = None, RunStatus.FAILED
            full_log += f"\n{_NOTE} the result could not be sent: {exc}"
        await _patch(ctx, handle, RunUpdate(result=result, log=full_log,
                                            status=status, finished_at=utcnow()))
        log.info("run reported", seconds_to_report=round(time.monotonic() - exited, 3))
    finally:
        await asyncio.to_thread(ctx.runtime.remove, container)
        workspace.remove()


def _input_in_blob(run: RunOut) -> bool:
    """Whether the run's input names a blob (fetched by stream) instead of carrying it."""
    return run.blob_storage_used and is_blob_ref(run.input)


async def _fetch_input(ctx: NodeContext, blob_id: str, workspace: Workspace) -> None:
    """Stream the input blob into the run's input file, decoding it on the way.

    Raises:
        ClientError: the server refused or kept failing.
        DeserializationError: the blob is not an unencrypted (base64) payload.
    """
    path = workspace.host_dir / "input"
    path.chmod(0o600)  # the node writes it; the container then reads it (0400)

    async def fetch() -> int:
        async with ctx.link.download_blob(blob_id) as chunks:
            return await blobstream.write_file(
                path, blobstream.atransform(chunks, blobstream.Base64Decoder()))

    size = await REPORT_RUN.acall(fetch)
    give_to_algorithm(path, 0o400)
    log.info("run input fetched from the blob store", blob=blob_id, bytes=size)


async def _result_field(ctx: NodeContext, workspace: Workspace, reply: Reply) -> str:
    """The ``result`` of the final PATCH: the output inline (base64), or, when the server
    keeps a blob store and that base64 text would be longer than its threshold, the UUID of
    the output streamed there (base64-encoded on the way; never read whole into memory).
    In an encrypted run, the output sealed for the initiating organization, inline (the
    blob store carries unencrypted results only).

    Raises:
        ClientError: the server refused the upload (or kept failing for REPORT_RUN's bound),
            or would not give the initiating organization's public key.
        EncryptionError: the result cannot be encrypted for its recipient.
    """
    if reply.scheme is not Scheme.PLAIN:
        return await ctx.encryption(reply.collaboration_id).seal_result(
            workspace.read_output(), reply)
    path = workspace.output_path
    size = path.stat().st_size if path.exists() else 0
    status = await REPORT_RUN.acall(ctx.link.blob_status)
    if not status.blob_store_enabled or blobstream.encoded_size(size) <= (
            status.threshold_bytes or 0):
        return result_to_wire(workspace.read_output())
    began = time.monotonic()
    blob_id = await REPORT_RUN.acall(lambda: ctx.link.upload_blob(
        blobstream.atransform(blobstream.read_file(path), blobstream.Base64Encoder())))
    log.info("run result streamed to the blob store", blob=blob_id, bytes=size,
             seconds=round(time.monotonic() - began, 3))
    return blob_id


async def _stream_logs(ctx: NodeContext, handle: RunHandle, container: Container) -> None:
    """Follow the container log and POST new lines to ``/run/<id>/log`` in small batches."""
    if not ctx.settings.share_algorithm_logs:
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def on_line(line: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, line)

    follower = asyncio.ensure_future(
        asyncio.to_thread(ctx.runtime.follow_logs, container, on_line))
    follower.add_done_callback(lambda _f: queue.put_nowait(None))
    batch: list[str] = []
    finished = False
    deadline = loop.time() + _LOG_BATCH_SECONDS
    while not finished:
        try:
            item = await asyncio.wait_for(queue.get(), timeout=max(deadline - loop.time(), 0))
            if item is None:
                finished = True
            else:
                batch.append(item)
        except TimeoutError:
            pass
        if finished or len(batch) >= _LOG_BATCH_LINES or loop.time() >= deadline:
            deadline = loop.time() + _LOG_BATCH_SECONDS
            if batch and not handle.deleted:
                lines, batch = batch, []
                try:
                    await ctx.link.post_log(handle.run_id, lines)
                except NotFound:  # the task was deleted: stop the container, say so once
                    note_deleted(handle)
                    handle.killed = True
                    await asyncio.to_thread(ctx.runtime.kill, container)
                except ClientError as exc:
                    if not handle.killed:
                        log.warning("live log lines not accepted", error=str(exc))
