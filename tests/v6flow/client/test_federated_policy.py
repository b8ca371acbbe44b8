"""The plain fan-out (no Prefect) on the real federation: partial-failure policy, non-JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from v6flow.client import AsyncClient
from v6flow.client.federated import (
    FanOutTracker,
    PartialRequest,
    gather_organizations,
    required_responses,
    run_on_organization,
    run_partial,
)
from v6flow.errors import BadRequest, NotEnoughResponses, ResultNotJSON, RunFailed

pytestmark = pytest.mark.docker


@pytest.fixture
def client(federation: Any) -> Iterator[AsyncClient]:
    """The federation's researcher as an asyncio client (closed in the test's loop)."""
    api = AsyncClient(federation.server_url, username=federation.username,
                      password=federation.password)
    yield api
    assert api._http.is_closed, "the test must close the client (async with client)"


def _request(federation: Any, method: str, *args: Any) -> PartialRequest:
    return PartialRequest(collaboration_id=federation.collaboration_id,
                          image=federation.test_image, method=method, args=args)


def _mixed_calls(client: AsyncClient, federation: Any, failing: list[int],
                 tracker: FanOutTracker) -> dict[int, Any]:
    """``boom`` at the ``failing`` organizations, ``echo <org id>`` at the others."""
    def call(org: int) -> Any:
        request = (_request(federation, "boom", f"kaboom-{org}") if org in failing
                   else _request(federation, "echo", org))
        return lambda: run_on_organization(client, request, org, tracker=tracker)
    return {org: call(org) for org in federation.organization_ids}


async def test_k_of_n_returns_the_successes_and_a_status_table(
        federation: Any, client: AsyncClient) -> None:
    """One of three organizations fails; 2 needed: the other two results and the table."""
    # Prepare
    failing, *healthy = federation.organization_ids
    names = {n.organization_id: n.organization_name for n in federation.nodes}
    tracker = FanOutTracker(names)
    # Execute
    async with client:
        results = await gather_organizations(
            _mixed_calls(client, federation, [failing], tracker), required=2, tracker=tracker)
    rows = {row["organization"]: row for row in tracker.rows()}
    # Assert
    assert results == {org: org for org in healthy}
    failed = rows[names[failing]]
    assert failed["status"] == "crashed"
    assert f"kaboom-{failing}" in failed["reason"]
    assert isinstance(failed["run id"], int) and failed["run id"] > 0
    for org in healthy:
        assert rows[names[org]]["status"] == "completed"
        assert rows[names[org]]["attempts"] == 1
        assert rows[names[org]]["seconds"] > 0
    assert set(rows) == set(names.values())
    assert not tracker.open_tasks


async def test_too_few_successes_raise_not_enough_responses(
        federation: Any, client: AsyncClient) -> None:
    """Two of three fail with 2 needed: the error names both organizations and why (the
    third is stopped as soon as 2 successes are impossible)."""
    # Prepare
    failing = federation.organization_ids[:2]
    names = {n.organization_id: n.organization_name for n in federation.nodes}
    tracker = FanOutTracker(names)
    # Execute
    with pytest.raises(NotEnoughResponses) as caught:
        async with client:
            await gather_organizations(_mixed_calls(client, federation, failing, tracker),
                                       required=2, tracker=tracker)
    # Assert
    error = caught.value  # the third organization may have been stopped early: cancelled
    assert set(failing) <= set(error.failures)
    assert all("cancelled" in error.failures[org] for org in set(error.failures) - set(failing))
    assert all(isinstance(error.errors[org], RunFailed) for org in failing)
    for org in failing:  # the one-line reason names the org; the exception keeps the traceback
        assert names[org] in str(error) and "crashed" in error.failures[org]
        assert f"kaboom-{org}" in str(error.errors[org])
    assert error.required == 2
    assert not tracker.open_tasks


async def test_non_json_result_is_a_clear_run_failure(
        federation: Any, client: AsyncClient) -> None:
    """A partial returning a set ends that run with ResultNotJSON, promptly."""
    # Prepare
    org = federation.organization_ids[0]
    # Execute
    with pytest.raises(ResultNotJSON) as caught:
        async with client, asyncio.timeout(90):
            await run_partial(client, _request(federation, "non_json"), [org])
    # Assert
    assert isinstance(caught.value, RunFailed)
    assert caught.value.organization_id == org
    assert "the result was not JSON" in str(caught.value)


async def test_min_responses_is_checked_before_any_task(
        federation: Any, client: AsyncClient) -> None:
    """min_responses above the number of organizations is refused without a server task."""
    async with client:
        # Prepare
        before = await client.drive(_task_count(federation.collaboration_id))
        # Execute
        with pytest.raises(BadRequest) as caught:
            await run_partial(client, _request(federation, "echo", 1), min_responses=4)
        after = await client.drive(_task_count(federation.collaboration_id))
    # Assert
    assert "min_responses" in str(caught.value)
    assert after == before
    assert required_responses(3, None, False) is None
    assert required_responses(3, None, True) == 1
    assert required_responses(3, 2, False) == 2


def _task_count(collaboration_id: int) -> Any:
    from v6flow.client._ops import task_list

    tasks = yield from task_list(collaboration_id=collaboration_id)
    return len(tasks)
