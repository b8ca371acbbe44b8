"""Prefect tasks that run a partial function at organizations (one task run per org).

A thin adapter over :mod:`v6flow.client.federated`: the Prefect task adds the run name
``<method>@<organization name>``, retries, the timeout and log forwarding; the work itself
(create a one-organization task on the server, wait through the push channel, fetch the
result, kill on timeout) is the plain client function.

Cost per call inside a flow run (``benchmarks/prefect_overhead.py``): on the critical path
are the organization lookup (as in the plain client), one Prefect task run per organization
(a few ms each, no API call) and, at the end, one round trip for the status table (written
together with the last progress value). The progress artifact's creation and updates, the
flow-run labels naming the server tasks (:mod:`.cancellation`) and the cancel watch run in
the background. Prefect's own cost per flow call (flow run, states, a result-storage lookup)
is larger; settings that cut it without turning a feature off:
``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`` (a saved filesystem block: no throwaway sync
client and blocking ``GET /storage`` per flow run), ``PREFECT_CLIENT_CSRF_SUPPORT_ENABLED=
false`` against a server that enforces no CSRF, and one ``AsyncClientContext`` held by a
process that calls many flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import anyio
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import Abort

from v6flow.client import DEFAULT_DATABASES, AsyncClient, federated
from v6flow.client.federated import FanOutTracker, PartialRequest
from v6flow.errors import (
    AuthenticationError,
    BadRequest,
    EncryptionError,
    NotFound,
    PermissionDenied,
    ResultNotJSON,
    RunFailed,
)
from v6flow.prefect import events
from v6flow.prefect.caching import cache_options, resolve_image_digest
from v6flow.prefect.cancellation import cancelling, mark_cancelled, record_server_task, registered
from v6flow.prefect.events import V6flowEvent
from v6flow.prefect.logging import log_forwarder, run_logger
from v6flow.prefect.reporting import FanOutReport
from v6flow.status import RunStatus

#: Seconds allowed for reading a failed run's node (for ``v6flow.node.offline``).
NODE_LOOKUP_SECONDS = 5.0


@runtime_checkable
class AsyncClientFactory(Protocol):
    """Anything that makes an :class:`AsyncClient` (e.g. the credentials Block)."""

    def get_async_client(self) -> AsyncClient:
        """A new, logged-out client; the caller closes it."""
        ...


ClientSource = AsyncClient | AsyncClientFactory


#: Answers that a retry cannot change: the request itself was refused, the partial
#: returned a value that is not JSON (it would do so again), or encryption failed (a key is
#: missing or wrong, or the server altered a payload).
PERMANENT_ERRORS = (AuthenticationError, BadRequest, NotFound, PermissionDenied, ResultNotJSON,
                    EncryptionError)


def worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry failed runs and timeouts, not refused requests."""
    return not isinstance(state.data, PERMANENT_ERRORS)


def _task_run_name(parameters: dict[str, Any]) -> str:
    return f"{parameters['request'].method}@{parameters['organization_name']}"


# Prefect's callback protocol carries a classmethod, so no plain function matches it.
@task(name="run-on-organization", task_run_name=_task_run_name,  # type: ignore[arg-type]
      cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=worth_retrying)
async def run_on_organization(client: AsyncClient, request: PartialRequest,
                              organization_id: int, organization_name: str,
                              tracker: FanOutTracker | None = None) -> Any:
    """Prefect task: run ``request`` at one organization and return its result.

    Node log lines are forwarded to this task run's log, tagged ``[<org> run <id>]``.
    Prefect's ``timeout_seconds`` cancels the wait; the server task is then killed
    (``POST /kill/task``). Retries (``with_options(retries=...)``) create a new server
    task for this organization only and skip refused requests (:func:`worth_retrying`).

    Raises:
        RunFailed: the run ended in a failure status (ResultNotJSON: result not JSON).
    """
    started = time.monotonic()
    earlier = tracker.outcomes.get(organization_id) if tracker is not None else None
    earlier_task = earlier.task_id if earlier is not None else None  # a previous attempt's
    try:
        value = await federated.run_on_organization(
            client, request, organization_id, on_log=log_forwarder(organization_name),
            tracker=tracker)
    except BaseException as exc:
        await _report_failure(client, organization_id, organization_name, tracker, exc,
                              time.monotonic() - started, earlier_task)
        raise
    _report_success(organization_id, organization_name, tracker)
    return value


def _flow_run_id() -> UUID | None:
    """The current flow run (also inside a task run), else None."""
    flow_context = FlowRunContext.get()
    if flow_context is not None and flow_context.flow_run is not None:
        return flow_context.flow_run.id
    task_context = TaskRunContext.get()
    return task_context.task_run.flow_run_id if task_context is not None else None


def _field(value: Any, name: str) -> Any:
    """``value[name]`` of an answer dict, or the attribute of a typed answer."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


async def _node_of_run(client: AsyncClient, task_id: int, organization_id: int
                       ) -> dict[str, Any] | None:
    """``{id, name, status}`` of the node that served the organization's run (one request,
    shielded and bounded: it also runs while the attempt is being cancelled)."""
    with anyio.move_on_after(NODE_LOOKUP_SECONDS, shield=True):
        try:
            runs = await client.run.list(task_id=task_id)
        except Exception as exc:
            run_logger().debug("cannot read the node of task %s: %s", task_id, exc)
            return None
        for run in runs:
            if _field(_field(run, "organization"), "id") in (organization_id, None):
                node = _field(run, "node")
                if node is not None:
                    return {key: _field(node, key) for key in ("id", "name", "status")}
    return None


async def _report_failure(client: AsyncClient, organization_id: int, organization_name: str,
                          tracker: FanOutTracker | None, exc: BaseException,
                          seconds: float, earlier_task: int | None = None) -> None:
    """Emit ``v6flow.run.failed``/``killed`` (and ``v6flow.node.offline``) for an attempt
    (``earlier_task``: the organization's task of a previous attempt, not this one's)."""
    outcome = tracker.outcomes.get(organization_id) if tracker is not None else None
    task_id = exc.task_id if isinstance(exc, RunFailed) else (
        outcome.task_id if outcome is not None else None)
    if task_id is None or (not isinstance(exc, RunFailed) and task_id == earlier_task):
        return  # refused before this attempt's server task existed: no run to report
    flow_run_id = _flow_run_id()
    if isinstance(exc, RunFailed):
        event = (V6flowEvent.RUN_KILLED if exc.status == RunStatus.KILLED.value
                 else V6flowEvent.RUN_FAILED)
        status, run_id = exc.status, exc.run_id
        reason = federated.failure_reason(exc, lines=events.REASON_LINES)
    else:
        timeout = getattr(getattr(TaskRunContext.get(), "task", None), "timeout_seconds", None)
        timed_out = timeout is not None and seconds >= 0.99 * timeout
        event, status, run_id = V6flowEvent.RUN_KILLED, RunStatus.KILLED.value, None
        reason = (f"timed out after {seconds:.1f} s" if timed_out else
                  f"stopped: {federated.failure_reason(exc)}")
    organization = events.resource("organization", organization_id, organization_name)
    related = events.task_related([task_id], flow_run_id)
    if run_id:
        related.append(events.resource("run", run_id, role="run"))
    attempt = outcome.attempts if outcome is not None else 1
    events.emit(event, organization, related, {
        "organization_id": organization_id, "task_id": task_id, "run_id": run_id,
        "status": status, "reason": events.cut(reason), "attempt": attempt})
    node = await _node_of_run(client, task_id, organization_id)
    if node is None or node.get("status") != "offline" or node.get("id") is None:
        return
    if flow_run_id is not None and not events.NODES.went_offline(
            flow_run_id, organization_id, node):
        return
    events.emit(V6flowEvent.NODE_OFFLINE,
                events.resource("node", node["id"], node.get("name")),
                [{**organization, "prefect.resource.role": "organization"}, *related],
                {"node_id": node["id"], "organization_id": organization_id,
                 "task_id": task_id, "reason": events.cut(reason)})


def _report_success(organization_id: int, organization_name: str,
                    tracker: FanOutTracker | None) -> None:
    """Emit ``v6flow.node.online`` when this organization's node was reported offline."""
    flow_run_id = _flow_run_id()
    node = events.NODES.came_back(flow_run_id, organization_id) if flow_run_id else None
    if node is None:
        return
    outcome = tracker.outcomes.get(organization_id) if tracker is not None else None
    task_id = outcome.task_id if outcome is not None else None
    events.emit(V6flowEvent.NODE_ONLINE, events.resource("node", node["id"], node.get("name")),
                [events.resource("organization", organization_id, organization_name,
                                 role="organization"),
                 *events.task_related([task_id] if task_id else [], flow_run_id)],
                {"node_id": node["id"], "organization_id": organization_id,
                 "task_id": task_id})


def _report_fan_out(method: str, collaboration_id: int, tracker: FanOutTracker,
                    required: int, flow_run_id: UUID, failed: BaseException | None) -> None:
    """Emit ``v6flow.fanout.met-minimum`` or ``missed-minimum`` at the end of a fan-out."""
    succeeded = sorted(org for org, o in tracker.outcomes.items() if o.succeeded)
    failures = {} if failed is None else tracker.failures()
    met = failed is None and len(succeeded) >= required
    related = events.task_related(tracker.task_ids, flow_run_id)
    related += [events.resource("organization", org, tracker.outcomes[org].organization_name,
                                role="failed-organization") for org in failures]
    events.emit(
        V6flowEvent.FANOUT_MET_MINIMUM if met else V6flowEvent.FANOUT_MISSED_MINIMUM,
        events.resource("collaboration", collaboration_id, **{"v6flow.method": method}),
        related,
        {"method": method, "required": required, "organizations": len(tracker.outcomes),
         "succeeded": succeeded,
         "failures": {str(org): events.cut(why) for org, why in failures.items()}})


#: ``POST /task`` bodies sent while this is set carry it as ``flow_run_id``.
def _linkable_prefect_api() -> bool:
    """True when flow runs live on a Prefect API a UI can link to (not an ephemeral one)."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


@contextlib.asynccontextmanager
async def _opened(source: ClientSource) -> AsyncIterator[AsyncClient]:
    if isinstance(source, AsyncClient):
        yield source
        return
    client = source.get_async_client()
    try:
        yield client
    finally:
        await client.aclose()


async def run_partial(client: ClientSource, collaboration_id: int, method: str, *,
                      image: str, organizations: Sequence[int] | None = None,
                      args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                      databases: Sequence[dict[str, Any]] | None = None,
                      retries: int = 0, retry_delay_seconds: float = 0,
                      timeout_seconds: float | None = None,
                      min_responses: int | None = None, allow_failures: bool = False,
                      cache: bool | timedelta = False, cache_key_extra: str | None = None,
                      tracker: FanOutTracker | None = None,
                      artifacts: bool = True) -> dict[int, Any]:
    """Run ``method`` of ``image`` at each organization, one Prefect task run per org.

    Call it inside an (async) flow. The task runs are named ``<method>@<org name>`` and
    run concurrently; each one retries on its own. Inside a flow run it also creates a
    progress artifact ``<method>-progress`` (updated as organizations finish) and a status
    table ``<method>-organizations`` (organization, run id, status, attempts, seconds,
    reason), and labels the flow run with its server tasks (:mod:`.cancellation`).
    Outside a flow run (e.g. a flow's ``.fn()``) it runs the plain fan-out of
    :func:`v6flow.client.federated.run_partial`: same policy and results, no task runs,
    no retries, no caching, no artifacts (pass ``tracker`` to get the status table).

    Args:
        client: an :class:`AsyncClient`, or a factory such as the credentials Block.
        collaboration_id: the collaboration to run in.
        method: the partial function's name in the algorithm package.
        image: the algorithm image.
        organizations: organization ids; None means every organization of the collaboration.
        args: positional arguments of the method.
        kwargs: keyword arguments of the method.
        databases: database requests (default ``[{"label": "default"}]``).
        retries: Prefect retries per organization.
        retry_delay_seconds: pause between retries.
        timeout_seconds: per attempt; on expiry the server task is killed.
        min_responses: go on when at least this many organizations succeed.
        allow_failures: go on with the organizations that succeed (at least one).
        cache: reuse an organization's result of an earlier flow run with the same
            image digest and inputs (True: for a day; a ``timedelta``: for that long).
            The digest is resolved once per call (pinned ``name@sha256:...`` or the local
            Docker engine); when it cannot be, caching is skipped with a warning unless
            ``cache_key_extra`` is given (:mod:`v6flow.prefect.caching`).
        cache_key_extra: part of the cache key, e.g. a data version.
        tracker: filled with the per-organization status table.
        artifacts: create the progress and status-table artifacts (inside a flow run).

    Returns:
        ``{organization_id: result}`` of the organizations that succeeded.

    Raises:
        RunFailed: (default policy) an organization's run failed after its retries.
        NotEnoughResponses: fewer than ``min_responses`` (or, with ``allow_failures``,
            no) organizations succeeded; names each failed organization and why.
        BadRequest: an organization is not in the collaboration, or bad ``min_responses``.
    """
    request = PartialRequest(
        collaboration_id=collaboration_id, image=image, method=method, args=tuple(args),
        kwargs=dict(kwargs or {}),
        databases=tuple(dict(db) for db in (databases or DEFAULT_DATABASES)),
    )
    context = FlowRunContext.get()
    async with _opened(client) as api:
        if context is None or context.flow_run is None:
            return await federated.run_partial(
                api, request, organizations, timeout=timeout_seconds, on_log=log_forwarder(),
                min_responses=min_responses, allow_failures=allow_failures, tracker=tracker)
        flow_run_id = context.flow_run.id
        request = replace(request, description=f"prefect flow run {flow_run_id}",
                          flow_run_id=str(flow_run_id) if _linkable_prefect_api() else None)
        names, digest = await asyncio.gather(
            federated.organization_names(api, collaboration_id, organizations),
            _image_digest(image, cache))
        required = federated.required_responses(len(names), min_responses, allow_failures)
        tracker = tracker if tracker is not None else FanOutTracker()
        for org, name in names.items():
            tracker.outcome(org, name)
        runner = _runner(retries, retry_delay_seconds, timeout_seconds,
                         cache_options(cache, cache_key_extra, image=image, image_digest=digest))
        report = FanOutReport(method, len(names), enabled=artifacts)
        record = partial(record_server_task, flow_run_id, server_url=api.base_url)

        async def on_task(task_id: int) -> None:
            # Both in the background: the progress artifact is created once a server task
            # exists (not earlier, where it would delay the first one), then the label.
            await record(task_id, after=report.start())

        tracker.on_task = on_task

        def call(org: int, name: str) -> Callable[[], Awaitable[Any]]:
            return lambda: runner(api, request, org, name, tracker)

        minimum = required if required is not None else len(names)
        with registered(flow_run_id, api, tracker):
            try:
                results = await _unless_cancelled(flow_run_id, federated.gather_organizations(
                    {org: call(org, name) for org, name in names.items()},
                    required=required, tracker=tracker, on_done=report.progress))
            except (Abort, asyncio.CancelledError):
                raise
            except Exception as exc:
                _report_fan_out(method, collaboration_id, tracker, minimum, flow_run_id, exc)
                raise
            finally:
                await report.finish(tracker, api.base_url)
        _report_fan_out(method, collaboration_id, tracker, minimum, flow_run_id, None)
        return results


def _runner(retries: int, retry_delay_seconds: float, timeout_seconds: float | None,
            cache: dict[str, Any]) -> Any:
    """``run_on_organization`` with these options (reused when not caching: building a
    Prefect task takes milliseconds)."""
    if not cache:
        with contextlib.suppress(TypeError):  # e.g. a list of retry delays: not hashable
            return _uncached_runner(retries, retry_delay_seconds, timeout_seconds)
    return run_on_organization.with_options(
        retries=retries, retry_delay_seconds=retry_delay_seconds,
        timeout_seconds=timeout_seconds, **cache)


@functools.lru_cache(maxsize=32)
def _uncached_runner(retries: int, retry_delay_seconds: float,
                     timeout_seconds: float | None) -> Any:
    return run_on_organization.with_options(
        retries=retries, retry_delay_seconds=retry_delay_seconds,
        timeout_seconds=timeout_seconds)


async def _image_digest(image: str, cache: bool | timedelta) -> str | None:
    """The image digest for the cache key (looked up once per call), None when not caching."""
    if cache is False:
        return None
    return await asyncio.to_thread(resolve_image_digest, image)


async def _unless_cancelled(flow_run_id: UUID,
                            fan_out: Coroutine[Any, Any, dict[int, Any]]) -> dict[int, Any]:
    """Await ``fan_out``; stop it (its server tasks are killed) when the flow run is
    cancelled in Prefect, then mark the run Cancelled and raise ``Abort``."""
    work = asyncio.ensure_future(fan_out)
    watch = asyncio.ensure_future(cancelling(flow_run_id))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (work, watch):
            if not future.done():
                future.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(work, watch, return_exceptions=True)
    if not work.cancelled():
        return work.result()
    message = "Flow run cancelled in Prefect; its server tasks were killed."
    run_logger().warning(message)
    with anyio.CancelScope(shield=True):
        await mark_cancelled(flow_run_id, message)
    raise Abort(message)
