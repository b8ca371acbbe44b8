"""Running a partial function at organizations: plain async functions, no Prefect.

:mod:`v6flow.prefect` wraps these in Prefect tasks; they are usable (and tested) alone.
Each organization gets its own one-organization task on the server, so one failing
organization can be retried without rerunning the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from v6flow.client._async import AsyncClient
from v6flow.client._ops import DEFAULT_DATABASES, log_tail, ref_id
from v6flow.client._watch import LogLines
from v6flow.errors import BadRequest, ClientError, RunFailed
from v6flow.status import RunStatus


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


async def organization_names(client: AsyncClient, collaboration_id: int,
                             organizations: Sequence[int] | None = None) -> dict[int, str]:
    """``{id: name}`` of the chosen organizations (all of the collaboration when None).

    Raises:
        BadRequest: an organization is not a member of the collaboration.
    """
    members = await client.organization.list(collaboration_id=collaboration_id)
    names = {int(org["id"]): str(org.get("name") or org["id"]) for org in members}
    if organizations is None:
        return dict(sorted(names.items()))
    unknown = [org for org in organizations if int(org) not in names]
    if unknown:
        raise BadRequest(f"organizations {unknown} are not in collaboration {collaboration_id}")
    return {int(org): names[int(org)] for org in organizations}


async def run_on_organization(client: AsyncClient, request: PartialRequest,
                              organization_id: int, *, timeout: float | None = None,
                              on_log: Callable[[LogLines], None] | None = None) -> Any:
    """Create a one-organization task, wait for it and return that organization's result.

    When the wait ends early (``timeout``, cancellation, an error) the task is killed on
    the server before the exception propagates.

    Raises:
        RunFailed: the run ended in a failure status (carries status and log tail).
        TaskTimeout: not finished within ``timeout`` seconds.
        ClientError: the server refused the task or failed.
    """
    task = await client.task.create(
        request.collaboration_id, [organization_id], request.image, request.method,
        args=list(request.args), kwargs=dict(request.kwargs),
        databases=list(request.databases), name=request.name or request.method,
        description=request.description,
    )
    task_id = int(task["id"])
    try:
        status = await client.wait_for_task(task_id, timeout, on_log=on_log)
    except BaseException:
        await _kill_shielded(client, task_id)
        raise
    if status is not RunStatus.COMPLETED:
        raise await _run_failure(client, task_id, organization_id, status)
    results = await client.result.from_task(task_id)
    return results.get(organization_id)


async def run_partial(client: AsyncClient, request: PartialRequest,
                      organizations: Sequence[int] | None = None, *,
                      timeout: float | None = None,
                      on_log: Callable[[LogLines], None] | None = None) -> dict[int, Any]:
    """Run ``request`` at every organization concurrently: ``{organization_id: result}``.

    Raises:
        RunFailed: a run failed (the other organizations' tasks are killed).
    """
    names = await organization_names(client, request.collaboration_id, organizations)
    runs = [asyncio.ensure_future(
        run_on_organization(client, request, org, timeout=timeout, on_log=on_log)
    ) for org in names]
    try:
        values = await asyncio.gather(*runs)
    except BaseException:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        raise
    return dict(zip(names, values, strict=True))


async def _kill_shielded(client: AsyncClient, task_id: int) -> None:
    """Kill a task even while the caller is being cancelled (e.g. a Prefect timeout)."""
    with anyio.CancelScope(shield=True), contextlib.suppress(ClientError):
        await client.task.kill(task_id)


async def _run_failure(client: AsyncClient, task_id: int, organization_id: int,
                       status: RunStatus) -> RunFailed:
    runs = await client.run.list(task_id=task_id)
    run = next((r for r in runs if ref_id(r.get("organization")) == organization_id),
               runs[0] if runs else {})
    return RunFailed(run_id=int(run.get("id") or 0), organization_id=organization_id,
                     status=str(run.get("status") or status), task_id=task_id,
                     log_tail=log_tail(run.get("log")))
