"""Prefect tasks that run a partial function at organizations (one task run per org).

A thin adapter over :mod:`v6flow.client.federated`: the Prefect task adds the run name
``<method>@<organization name>``, retries, the timeout and log forwarding; the work itself
(create a one-organization task on the server, wait through the push channel, fetch the
result, kill on timeout) is the plain client function.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext

from v6flow.client import DEFAULT_DATABASES, AsyncClient, federated
from v6flow.client.federated import PartialRequest
from v6flow.errors import AuthenticationError, BadRequest, NotFound, PermissionDenied
from v6flow.prefect.logging import log_forwarder


@runtime_checkable
class AsyncClientFactory(Protocol):
    """Anything that makes an :class:`AsyncClient` (e.g. the credentials Block)."""

    def get_async_client(self) -> AsyncClient:
        """A new, logged-out client; the caller closes it."""
        ...


ClientSource = AsyncClient | AsyncClientFactory


#: Answers that a retry cannot change: the request itself was refused.
PERMANENT_ERRORS = (AuthenticationError, BadRequest, NotFound, PermissionDenied)


def worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry failed runs and timeouts, not refused requests."""
    return not isinstance(state.data, PERMANENT_ERRORS)


def _task_run_name(parameters: dict[str, Any]) -> str:
    return f"{parameters['request'].method}@{parameters['organization_name']}"


# Prefect's callback protocol carries a classmethod, so no plain function matches it.
@task(name="run-on-organization", task_run_name=_task_run_name,  # type: ignore[arg-type]
      cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=worth_retrying)
async def run_on_organization(client: AsyncClient, request: PartialRequest,
                              organization_id: int, organization_name: str) -> Any:
    """Prefect task: run ``request`` at one organization and return its result.

    Node log lines are forwarded to this task run's log. Prefect's ``timeout_seconds``
    cancels the wait; the server task is then killed (``POST /kill/task``). Retries
    (``with_options(retries=...)``) skip requests the server refused (:func:`worth_retrying`).

    Raises:
        RunFailed: the run ended in a failure status.
    """
    return await federated.run_on_organization(
        client, request, organization_id, on_log=log_forwarder(organization_name))


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
                      timeout_seconds: float | None = None) -> dict[int, Any]:
    """Run ``method`` of ``image`` at each organization, one Prefect task run per org.

    Call it inside an (async) flow. The task runs are named ``<method>@<org name>`` and
    run concurrently (``asyncio.gather``); each one retries on its own. Outside a flow run
    (e.g. a flow's ``.fn()`` in a unit test) it runs the plain fan-out of
    :func:`v6flow.client.federated.run_partial` instead: no task runs, no retries.

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

    Returns:
        ``{organization_id: result}``.

    Raises:
        RunFailed: an organization's run failed after its retries.
        BadRequest: an organization is not in the collaboration.
    """
    request = PartialRequest(
        collaboration_id=collaboration_id, image=image, method=method, args=tuple(args),
        kwargs=dict(kwargs or {}),
        databases=tuple(dict(db) for db in (databases or DEFAULT_DATABASES)),
    )
    runner = run_on_organization.with_options(
        retries=retries, retry_delay_seconds=retry_delay_seconds,
        timeout_seconds=timeout_seconds)
    async with _opened(client) as api:
        if FlowRunContext.get() is None:
            return await federated.run_partial(api, request, organizations,
                                               timeout=timeout_seconds,
                                               on_log=log_forwarder())
        names = await federated.organization_names(api, collaboration_id, organizations)
        runs = [asyncio.ensure_future(runner(api, request, org_id, org_name))
                for org_id, org_name in names.items()]
        try:
            values = await asyncio.gather(*runs)
        except BaseException:
            for run in runs:  # a failed organization stops the others (their tasks are killed)
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            raise
    return dict(zip(names, values, strict=True))
