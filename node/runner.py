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
from typing import Any

import structlog
from docker.models.containers import Container

from node.errors import ContainerLost, ContainerStartError, ImageUnavailable
from node.policies import image_allowed
from node.relay import PeerRelay, peer_session
from node.runtime.docker import AlgorithmSpec, DockerRuntime
from node.runtime.workspace import (
    Workspace,
    build_environment,
    create_workspace,
    database_volumes,
    existing_workspace,
)
from node.server_link import ServerLink
from node.settings import NodeSettings
from v6flow.errors import BadRequest, ClientError, DeserializationError, ServerError
from v6flow.status import RunStatus
from v6flow.wire import b64decode_str, format_datetime, result_to_wire, utcnow

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


@dataclass
class RunHandle:
    """A run this node is handling; the daemon uses it to kill or stop it."""

    run_id: int
    task_id: int
    container: Container | None = None
    killed: bool = False
    stopping: bool = False


async def _patch(ctx: NodeContext, run_id: int, fields: dict[str, Any], *,
                 attempts: int = 3) -> None:
    """PATCH a run, retrying when the server is briefly unreachable."""
    for attempt in range(1, attempts + 1):
        try:
            await ctx.link.patch_run(run_id, fields)
            return
        except ServerError as exc:
            if attempt == attempts:
                log.error("could not report run", run_id=run_id, error=str(exc))
                return
            await asyncio.sleep(attempt)
        except ClientError as exc:
            log.warning("run report refused", run_id=run_id, error=str(exc),
                        status=fields.get("status"))
            return


async def report_failure(ctx: NodeContext, run_id: int, status: RunStatus,
                         message: str) -> None:
    """Report a run as finished with a failure ``status``; ``message`` becomes its log."""
    log.info("run ended without container", run_id=run_id, status=status.value,
             reason=message)
    await _patch(ctx, run_id, {"status": status.value, "log": f"{_NOTE} {message}",
                               "finished_at": format_datetime(utcnow())})


def _decode_input(raw: Any) -> bytes:
    if not raw:
        return b""
    if isinstance(raw, str) and "$" in raw:
        raise DeserializationError(
            "the input is encrypted; this node does not support encrypted collaborations yet")
    return b64decode_str(str(raw))


async def execute_run(ctx: NodeContext, run: dict[str, Any], handle: RunHandle) -> None:
    """Handle one open run completely; never raises (every outcome is reported)."""
    run_id = handle.run_id
    task: dict[str, Any] = run.get("task") or {}
    image = str(task.get("image", ""))
    task_id = int(task.get("id", handle.task_id))
    job_id = int(task.get("job_id") or task_id)
    structlog.contextvars.bind_contextvars(run_id=run_id, task_id=task_id)

    existing = await asyncio.to_thread(ctx.runtime.find_run_container, run_id)
    if existing is not None:
        log.info("adopting a container left by an earlier node process")
        handle.container = existing
        try:
            await ctx.runtime.acquire_sidecar(job_id, run_id)
            await _supervise(ctx, handle, existing, existing_workspace(ctx.node_dir, run_id))
        finally:
            await ctx.runtime.release_sidecar(job_id, run_id)
        return

    decision = image_allowed(image, ctx.settings.policies.allowed_algorithms)
    if not decision.allowed:
        await report_failure(ctx, run_id, RunStatus.NOT_ALLOWED, decision.reason)
        return
    # The network sidecar starts while the image, input and token are prepared.
    sidecar_task = asyncio.create_task(ctx.runtime.acquire_sidecar(job_id, run_id))
    try:
        await _prepare_and_run(ctx, run, handle, sidecar_task, job_id=job_id, task_id=task_id,
                               image=image)
    finally:
        with contextlib.suppress(Exception):
            await sidecar_task
        await ctx.runtime.release_sidecar(job_id, run_id)


async def _prepare_and_run(ctx: NodeContext, run: dict[str, Any], handle: RunHandle,
                           sidecar_task: asyncio.Task[Container], *, job_id: int,
                           task_id: int, image: str) -> None:
    """Image, input, token, files, then the container; failures are reported."""
    run_id = handle.run_id
    task: dict[str, Any] = run.get("task") or {}
    began = time.monotonic()
    try:
        await ctx.link.patch_run(run_id, {"started_at": format_datetime(utcnow()),
                                          "status": RunStatus.INITIALIZING.value})
    except BadRequest as exc:  # finished meanwhile (killed, or a stale open-run list)
        log.info("run no longer open; not started", reason=exc.msg)
        return
    except ClientError as exc:
        log.warning("could not report the start", error=str(exc))
    try:
        source = await ctx.runtime.ensure_image(
            image, require_pull=ctx.settings.policies.require_algorithm_pull,
            timeout=ctx.settings.pull_timeout)
    except ImageUnavailable as exc:
        await report_failure(ctx, run_id, RunStatus.NO_DOCKER_IMAGE, str(exc))
        return
    try:
        input_bytes = _decode_input(run.get("input"))
    except DeserializationError as exc:
        await report_failure(ctx, run_id, RunStatus.FAILED, f"cannot read the run input: {exc}")
        return
    try:
        token = await ctx.link.container_token(task_id, image)
    except ClientError as exc:
        await report_failure(ctx, run_id, RunStatus.FAILED,
                      f"Could not obtain algorithm container token: {exc.msg}")
        return

    workspace = create_workspace(ctx.node_dir, run_id, input_bytes=input_bytes, token=token)
    env = build_environment(workspace=workspace, settings=ctx.settings,
                            task_databases=list(task.get("databases") or []))
    volumes = {str(workspace.host_dir): {"bind": workspace.container_dir, "mode": "rw"},
               **database_volumes(ctx.settings.databases)}
    spec = AlgorithmSpec(run_id=run_id, task_id=task_id, job_id=job_id, image=image,
                         environment=env, volumes=volumes)
    try:
        sidecar = await sidecar_task
        container = await asyncio.to_thread(ctx.runtime.start_algorithm, spec, sidecar)
    except ContainerStartError as exc:
        workspace.remove()
        await report_failure(ctx, run_id, RunStatus.START_FAILED, str(exc))
        return
    handle.container = container
    log.info("algorithm container started", image=image, image_source=source,
             seconds_to_start=round(time.monotonic() - began, 3))
    if handle.killed or handle.stopping:
        ctx.runtime.kill(container)
    async with peer_session(ctx, run_id=run_id, token=token):  # ports, relay (node/relay.py)
        await _patch(ctx, run_id, {"status": RunStatus.ACTIVE.value})
        await _supervise(ctx, handle, container, workspace)


async def _supervise(ctx: NodeContext, handle: RunHandle, container: Container,
                     workspace: Workspace) -> None:
    """Wait for the container, stream its log, report the outcome and clean up."""
    run_id = handle.run_id
    try:
        streamer = asyncio.create_task(_stream_logs(ctx, handle, container))
        try:
            exit_code = await asyncio.to_thread(ctx.runtime.wait, container)
        except ContainerLost as exc:
            streamer.cancel()
            await report_failure(ctx, run_id, RunStatus.UNKNOWN_ERROR, str(exc))
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(streamer, timeout=10)
        full_log = await asyncio.to_thread(ctx.runtime.full_logs, container)
        result = workspace.read_output()
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
        log.info("run finished", status=status.value, exit_code=exit_code)
        fields = {"result": result_to_wire(result), "log": full_log,
                  "status": status.value, "finished_at": format_datetime(utcnow())}
        if status is RunStatus.KILLED:
            with contextlib.suppress(BadRequest):  # the server already finished it (§4.6)
                await ctx.link.patch_run(run_id, fields)
        else:
            await _patch(ctx, run_id, fields)
    finally:
        await asyncio.to_thread(ctx.runtime.remove, container)
        workspace.remove()


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
            if batch:
                lines, batch = batch, []
                try:
                    await ctx.link.post_log(handle.run_id, lines)
                except ClientError as exc:
                    log.warning("live log lines not accepted", error=str(exc))
