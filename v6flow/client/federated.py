"""Running a partial function at organizations: plain async functions, no Prefect.

:mod:`v6flow.prefect` wraps these in Prefect tasks; they are usable (and tested) alone.
Each organization gets its own one-organization task on the server, so one failing
organization can be retried without rerunning the others.

Policy (:func:`gather_organizations`): by default the first failed organization fails the
call and the others' tasks are killed; with ``allow_failures`` / ``min_responses`` it goes
on with k of n and raises ``NotEnoughResponses`` when fewer than ``min_responses`` succeed.
:class:`FanOutTracker` holds the per-organization status table.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from v6flow._shield import uncancellable
from v6flow.client import _result_ops as result_ops
from v6flow.client._async import AsyncClient
from v6flow.client._ops import DEFAULT_DATABASES, log_tail
from v6flow.client._stream_wait import subscribe, wait_on_stream
from v6flow.client._watch import LogLines
from v6flow.errors import (
    BadRequest,
    ClientError,
    DeserializationError,
    NotEnoughResponses,
    ResultNotJSON,
    RunFailed,
    TaskTimeout,
)
from v6flow.status import RunStatus

#: Log markers of a partial whose return value could not be written as JSON.
_NOT_JSON_MARKERS = ("not JSON-serialisable", "OutputError")


@dataclass(frozen=True)
class PartialRequest:
    """What to run at each organization: image, method and its arguments."""

    collaboration_id: int
    image: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    databases: tuple[dict[str, Any], ...] = DEFAULT_DATABASES
    name: str | None = None
    description: str | None = None
    #: The Prefect flow run the tasks belong to (recorded with each task for the UI's link).
    flow_run_id: str | None = None


@dataclass
class OrganizationOutcome:
    """How one organization's part of a fan-out went (one row of the status table)."""

    organization_id: int
    organization_name: str
    status: str = "pending"
    task_id: int | None = None
    run_id: int | None = None
    attempts: int = 0
    seconds: float = 0.0
    reason: str = ""

    @property
    def succeeded(self) -> bool:
        """The organization delivered a result (run completed, or taken from the cache)."""
        return self.status in (RunStatus.COMPLETED.value, "cached")

    def row(self) -> dict[str, Any]:
        """The status-table row: organization, run id, status, attempts, seconds, reason."""
        return {"organization": self.organization_name, "run id": self.run_id,
                "status": self.status, "attempts": self.attempts,
                "seconds": round(self.seconds, 2), "reason": self.reason}


class FanOutTracker:
    """Per-organization outcomes and the server tasks (all, still open), updated as runs go.

    ``on_task`` is awaited with each server task id right after its creation. Not a
    dataclass on purpose: Prefect walks dataclass task parameters.
    """

    def __init__(self, names: Mapping[int, str] | None = None, *,
                 on_task: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.outcomes: dict[int, OrganizationOutcome] = {}
        self.open_tasks: set[int] = set()
        self.task_ids: list[int] = []
        self.on_task = on_task
        for org, name in (names or {}).items():
            self.outcome(org, name)

    def outcome(self, organization_id: int, name: str | None = None) -> OrganizationOutcome:
        """The outcome record of an organization (created on first use)."""
        if organization_id not in self.outcomes:
            self.outcomes[organization_id] = OrganizationOutcome(
                organization_id, name or str(organization_id))
        return self.outcomes[organization_id]

    def rows(self) -> list[dict[str, Any]]:
        """The status table, one row per organization."""
        return [outcome.row() for outcome in self.outcomes.values()]

    def failures(self) -> dict[int, str]:
        """``{organization_id: reason}`` of the organizations without a result."""
        return {org: f"{o.organization_name}: {o.reason or o.status}"
                for org, o in self.outcomes.items() if not o.succeeded}


async def organization_names(client: AsyncClient, collaboration_id: int,
                             organizations: Sequence[int] | None = None) -> dict[int, str]:
    """``{id: name}`` of the chosen organizations (all of the collaboration when None).

    Raises:
        BadRequest: an organization is not a member of the collaboration.
    """
    members = await client.organization.list(collaboration_id=collaboration_id)
    names = {org.id: org.name or str(org.id) for org in members}
    if organizations is None:
        return dict(sorted(names.items()))
    unknown = [org for org in organizations if int(org) not in names]
    if unknown:
        raise BadRequest(f"organizations {unknown} are not in collaboration {collaboration_id}")
    return {int(org): names[int(org)] for org in organizations}


async def run_on_organization(client: AsyncClient, request: PartialRequest,
                              organization_id: int, *, timeout: float | None = None,
                              on_log: Callable[[LogLines], None] | None = None,
                              tracker: FanOutTracker | None = None) -> Any:
    """Create a one-organization task, wait for it and return that organization's result.

    When the wait ends early (``timeout``, cancellation, an error) the task is killed on
    the server before the exception propagates. Each call is one attempt in ``tracker``.

    Raises:
        ResultNotJSON: the partial's return value was not JSON (a RunFailed).
        RunFailed: the run ended in a failure status (carries status and log tail).
        TaskTimeout: not finished within ``timeout`` seconds.
        ClientError: the server refused the task or failed.
    """
    outcome = (tracker or FanOutTracker()).outcome(organization_id)
    outcome.attempts += 1
    outcome.status, outcome.reason, outcome.run_id = "active", "", None
    started = time.monotonic()
    try:
        async with contextlib.AsyncExitStack() as stack:
            stream = await subscribe(client, stack)  # before the task exists: no line lost
            task = await client.task.create(
                request.collaboration_id, [organization_id], request.image, request.method,
                args=list(request.args), kwargs=dict(request.kwargs),
                databases=list(request.databases), name=request.name or request.method,
                description=request.description, flow_run_id=request.flow_run_id,
            )
            task_id = outcome.task_id = task.id
            if tracker is not None:
                tracker.open_tasks.add(task_id)
                tracker.task_ids.append(task_id)
            try:
                if tracker is not None and tracker.on_task is not None:
                    await tracker.on_task(task_id)
                status = await wait_on_stream(client, stream, task_id, timeout, on_log)
            except BaseException:
                await _kill_shielded(client, task_id)
                raise
            finally:
                if tracker is not None:
                    tracker.open_tasks.discard(task_id)
        value = await _run_result(client, task_id, organization_id, status, outcome,
                                  request.collaboration_id)
    except BaseException as exc:
        outcome.status = (exc.status if isinstance(exc, RunFailed) else
                          "cancelled" if isinstance(exc, asyncio.CancelledError) else "error")
        outcome.reason = failure_reason(exc)
        raise
    finally:
        outcome.seconds += time.monotonic() - started
    outcome.status = RunStatus.COMPLETED.value
    return value


def failure_reason(exc: BaseException, lines: int = 3) -> str:
    """A short reason for the status table: status and the last log lines, or the error."""
    if isinstance(exc, RunFailed):
        tail = " | ".join(exc.log_tail.splitlines()[-lines:])
        head = "result was not JSON" if isinstance(exc, ResultNotJSON) else exc.status
        return f"{head}: {tail}" if tail else head
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return f"{type(exc).__name__}: {exc}"


def required_responses(total: int, min_responses: int | None,
                       allow_failures: bool) -> int | None:
    """How many organizations must succeed; None means all, failing at the first failure.

    ``allow_failures`` without ``min_responses`` needs at least one organization.

    Raises:
        BadRequest: ``min_responses`` is not within 1..``total``.
    """
    if min_responses is None:
        return min(1, total) if allow_failures else None
    if not 1 <= min_responses <= total:
        raise BadRequest(f"min_responses must be between 1 and {total} (the number of "
                         f"organizations), not {min_responses}")
    return min_responses


async def gather_organizations(
        calls: Mapping[int, Callable[[], Awaitable[Any]]], *, required: int | None,
        tracker: FanOutTracker,
        on_done: Callable[[int, int], Awaitable[None] | None] | None = None,
) -> dict[int, Any]:
    """Run one call per organization concurrently under the partial-failure policy.

    Args:
        calls: ``{organization_id: zero-argument coroutine function}``.
        required: successes needed (None: all, the first failure stops the others).
        tracker: outcomes per organization; cached answers (no attempt) are marked ``cached``.
        on_done: called with (finished, total) each time an organization finishes.

    Returns:
        ``{organization_id: result}`` of the organizations that succeeded.

    Raises:
        NotEnoughResponses: fewer than ``required`` organizations succeeded (raised as
            soon as that is certain; the remaining organizations' tasks are killed).
        Exception: with ``required`` None, the first organization's error.
    """
    runs = [asyncio.ensure_future(_tagged(org, call)) for org, call in calls.items()]
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}
    try:
        for finished, future in enumerate(asyncio.as_completed(runs), start=1):
            org, value, exc = await future
            if exc is not None:
                if required is None:
                    raise exc
                errors[org] = exc
                _mark_failed(tracker, org, exc)
                if len(runs) - len(errors) < required:
                    break
            else:
                results[org] = value
                outcome = tracker.outcome(org)
                if outcome.attempts == 0:
                    outcome.status = "cached"
            if on_done is not None:
                maybe = on_done(finished, len(runs))
                if inspect.isawaitable(maybe):
                    await maybe
    finally:
        await _cancel_all(runs)
    if required is not None and len(results) < required:
        raise NotEnoughResponses(required=required, succeeded=sorted(results),
                                 failures=tracker.failures(), errors=errors)
    return {org: results[org] for org in calls if org in results}


async def run_partial(client: AsyncClient, request: PartialRequest,
                      organizations: Sequence[int] | None = None, *,
                      timeout: float | None = None,
                      on_log: Callable[[LogLines], None] | None = None,
                      min_responses: int | None = None, allow_failures: bool = False,
                      tracker: FanOutTracker | None = None) -> dict[int, Any]:
    """Run ``request`` at every organization concurrently: ``{organization_id: result}``.

    Args:
        client: a logged-in (or loggable) client.
        request: what to run.
        organizations: organization ids (None: every member of the collaboration).
        timeout: seconds per organization; the server task is killed on expiry.
        on_log: receives live log lines of the runs.
        min_responses: go on when at least this many organizations succeed.
        allow_failures: go on with the organizations that succeed (at least one).
        tracker: filled with the per-organization status table.

    Returns:
        The results of the organizations that succeeded.

    Raises:
        RunFailed: (default policy) a run failed; the other organizations' tasks are killed.
        NotEnoughResponses: fewer than ``min_responses`` organizations succeeded.
    """
    names = await organization_names(client, request.collaboration_id, organizations)
    required = required_responses(len(names), min_responses, allow_failures)
    tracker = tracker if tracker is not None else FanOutTracker()
    for org, name in names.items():
        tracker.outcome(org, name)

    def call(org: int) -> Callable[[], Awaitable[Any]]:
        return lambda: run_on_organization(client, request, org, timeout=timeout,
                                           on_log=on_log, tracker=tracker)

    return await gather_organizations({org: call(org) for org in names}, required=required,
                                      tracker=tracker)


async def kill_tasks(client: AsyncClient, task_ids: Sequence[int]) -> None:
    """Kill server tasks concurrently (errors ignored), shielded from cancellation."""
    with anyio.CancelScope(shield=True):
        await uncancellable(asyncio.gather(*(_kill_shielded(client, t) for t in task_ids)))


async def _kill_shielded(client: AsyncClient, task_id: int) -> None:
    """Kill a task even while the caller is being cancelled (a Prefect timeout, SIGTERM)."""
    with anyio.CancelScope(shield=True), contextlib.suppress(ClientError):
        await uncancellable(client.task.kill(task_id))


async def _tagged(org: int, call: Callable[[], Awaitable[Any]]
                  ) -> tuple[int, Any, Exception | None]:
    try:
        return org, await call(), None
    except Exception as exc:
        return org, None, exc


async def _cancel_all(runs: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel unfinished runs (each kills its server task) and wait for them."""
    pending = [run for run in runs if not run.done()]
    for run in pending:
        run.cancel()
    with anyio.CancelScope(shield=True):
        await uncancellable(asyncio.gather(*pending, return_exceptions=True))


def _mark_failed(tracker: FanOutTracker, org: int, exc: BaseException) -> None:
    outcome = tracker.outcome(org)  # a Prefect timeout reaches the attempt as cancellation
    if outcome.succeeded or outcome.status in ("pending", "active", "cancelled"):
        outcome.status = (exc.status if isinstance(exc, RunFailed) else "timed out"
                          if isinstance(exc, TimeoutError | TaskTimeout) else "error")
        outcome.reason = failure_reason(exc)


async def _run_result(client: AsyncClient, task_id: int, organization_id: int,
                      status: RunStatus, outcome: OrganizationOutcome,
                      collaboration_id: int | None = None) -> Any:
    """The organization's decoded (decrypted) result, or the failure as an exception.

    Raises:
        RunFailed: the run failed (ResultNotJSON: its result is not JSON).
        DecryptionError: an encrypted result cannot be decrypted (altered, wrong key).
    """
    runs = await client.run.list(task_id=task_id)
    run = next((r for r in runs if r.organization.id == organization_id),
               runs[0] if runs else None)
    run_id = outcome.run_id = run.id if run is not None else 0
    run_status = str(run.status if run is not None else status)
    tail = log_tail(run.log if run is not None else None)
    failure = RunFailed
    if status is not RunStatus.COMPLETED:
        if any(marker in tail for marker in _NOT_JSON_MARKERS):
            failure = ResultNotJSON
        raise failure(run_id=run_id, organization_id=organization_id, status=run_status,
                      task_id=task_id, log_tail=tail)
    try:
        return await client.drive(result_ops.result_of_run(
            task_id, run_id, organization_id, collaboration_id=collaboration_id,
            init_org_id=client.encryption.organization_id))
    except DeserializationError as exc:
        raise ResultNotJSON(run_id=run_id, organization_id=organization_id,
                            status=run_status, task_id=task_id, log_tail=tail) from exc
