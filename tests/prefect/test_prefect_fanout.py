"""The Prefect adapter under the real engine: per-organization task runs, retries, logs."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

from prefect_v6flow.credentials import V6flowServerCredentials
from tests.flows.researcher import Researcher
from tests.prefect_records import recorded_task_runs
from v6flow.client import Client
from v6flow.errors import RunFailed
from v6flow.prefect import run_partial

pytestmark = pytest.mark.docker


def _credentials(researcher: Researcher) -> V6flowServerCredentials:
    return V6flowServerCredentials(url=researcher.url, username=researcher.username,
                                   password=researcher.password)  # type: ignore[arg-type]


@flow(name="fan-out-test")
async def fan_out(credentials: V6flowServerCredentials, collaboration_id: int, method: str,
                  image: str, args: list[Any], organizations: list[int] | None = None,
                  retries: int = 0, timeout_seconds: float | None = None) -> dict[int, Any]:
    """A minimal central function: one partial at each organization."""
    return await run_partial(credentials, collaboration_id, method, image=image, args=args,
                             organizations=organizations, retries=retries,
                             retry_delay_seconds=0, timeout_seconds=timeout_seconds)


async def _task_runs(flow_run_id: UUID, expected: int = 0) -> list[Any]:
    async with get_client() as client:
        return await recorded_task_runs(client, flow_run_id, expected=expected)


async def _flow_logs(flow_run_id: UUID, needle: str, timeout: float = 15) -> list[str]:
    """Messages of the flow run's logs, waiting until one contains ``needle``."""
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    while time.monotonic() < deadline:
        await APILogHandler.aflush()
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        messages = [log.message for log in logs]
        if any(needle in m for m in messages):
            return messages
        await asyncio.sleep(0.3)
    return messages


def _server_tasks(federation: Any, researcher: Researcher, after: int) -> dict[int, int]:
    """How many server tasks each organization got with an id above ``after``."""
    counts: dict[int, int] = {}
    with Client(researcher.url, username=researcher.username,
                password=researcher.password) as client:
        for task in client.task.list(collaboration_id=federation.collaboration_id):
            if task.id > after:
                for run in client.run.list(task_id=task.id):
                    org = run.organization.id
                    counts[org] = counts.get(org, 0) + 1
    return counts


def _kill_first_active_task_of(federation: Any, researcher: Researcher, organization_id: int,
                               after: int, killed: list[int]) -> None:
    """Kill the first task above ``after`` whose run at ``organization_id`` is active."""
    with Client(researcher.url, username=researcher.username,
                password=researcher.password) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for task in client.task.list(collaboration_id=federation.collaboration_id):
                if task.id <= after:
                    continue  # the session's earlier tasks: reading their runs is too slow
                runs = client.run.list(task_id=task.id)
                if any(
                        r.organization.id == organization_id and r.status == "active"
                        for r in runs):
                    client.task.kill(task.id)
                    killed.append(task.id)
                    return
            time.sleep(0.2)


def _last_task_id(federation: Any, researcher: Researcher) -> int:
    with Client(researcher.url, username=researcher.username,
                password=researcher.password) as client:
        tasks = client.task.list(collaboration_id=federation.collaboration_id)
    return max((t.id for t in tasks), default=0)


async def test_one_named_task_run_per_organization_with_node_logs(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """Task runs are named ``echo@<org name>``, results come back per org, node lines logged."""
    # Execute
    state = await fan_out(_credentials(researcher), federation.collaboration_id,
                          "echo", test_algorithm_image, ["hi"], return_state=True)
    result = await state.result()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    names = {n.organization_name for n in federation.nodes}
    runs = await _task_runs(flow_run_id, expected=len(names))
    logs = await _flow_logs(flow_run_id, "calling")
    # Assert
    assert result == dict.fromkeys(federation.organization_ids, "hi")
    assert sorted(r.name for r in runs) == sorted(f"echo@{name}" for name in names)
    assert all(r.state_type.value == "COMPLETED" for r in runs)
    for name in names:
        assert any(m.startswith(f"[{name} run ") and "echo" in m for m in logs), (name, logs)


async def test_retries_rerun_only_the_failing_organization(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """One run_partial at two orgs; the first attempt at one org is killed: only it reruns."""
    # Prepare
    victim, other = federation.organization_ids[0], federation.organization_ids[1]
    before = _last_task_id(federation, researcher)
    killed: list[int] = []
    killer = asyncio.create_task(asyncio.to_thread(
        _kill_first_active_task_of, federation, researcher, victim, before, killed))
    # Execute
    result = await fan_out(_credentials(researcher), federation.collaboration_id,
                           "sleep", test_algorithm_image, [3], organizations=[victim, other],
                           retries=1)
    await killer
    counts = _server_tasks(federation, researcher, before)
    # Assert
    assert killed
    assert result == {victim: 3.0, other: 3.0}
    assert counts == {victim: 2, other: 1}


async def test_failure_after_retries_is_run_failed_with_log_tail(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """boom at one org (retried once, then RunFailed with the traceback) next to echo."""
    # Prepare
    failing, healthy = federation.organization_ids[0], federation.organization_ids[1]
    credentials = _credentials(researcher)
    before = _last_task_id(federation, researcher)

    @flow(name="mixed-test")
    async def mixed() -> tuple[Any, Any]:
        return await asyncio.gather(
            run_partial(credentials, federation.collaboration_id, "boom",
                        image=test_algorithm_image, args=["kaboom"], organizations=[failing],
                        retries=1),
            run_partial(credentials, federation.collaboration_id, "echo",
                        image=test_algorithm_image, args=[7], organizations=[healthy],
                        retries=1),
            return_exceptions=True)

    # Execute
    boom_outcome, echo_outcome = await mixed()
    counts = _server_tasks(federation, researcher, before)
    # Assert
    assert isinstance(boom_outcome, RunFailed)
    assert boom_outcome.status == "crashed"
    assert "kaboom" in boom_outcome.log_tail
    assert echo_outcome == {healthy: 7}
    assert counts == {failing: 2, healthy: 1}


async def test_timeout_kills_the_server_task(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """When timeout_seconds expires the organization's server task is killed."""
    # Prepare
    org = federation.organization_ids[2]
    before = _last_task_id(federation, researcher)
    # Execute
    state = await fan_out(_credentials(researcher), federation.collaboration_id,
                          "sleep", test_algorithm_image, [60], organizations=[org],
                          timeout_seconds=3, return_state=True)
    # Assert
    assert state.is_failed()
    with Client(researcher.url, username=researcher.username,
                password=researcher.password) as client:
        tasks = [t for t in client.task.list(collaboration_id=federation.collaboration_id)
                 if t.id > before]
        assert len(tasks) == 1
        assert client.task.status(tasks[0].id).value == "killed by user"


async def test_a_failed_organization_stops_the_others(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """Without retries, one organization's failure cancels the rest and kills their tasks."""
    # Prepare
    victim, other = federation.organization_ids[0], federation.organization_ids[1]
    before = _last_task_id(federation, researcher)
    killed: list[int] = []
    killer = asyncio.create_task(asyncio.to_thread(
        _kill_first_active_task_of, federation, researcher, victim, before, killed))
    # Execute
    state = await fan_out(_credentials(researcher), federation.collaboration_id, "sleep",
                          test_algorithm_image, [30], organizations=[victim, other],
                          return_state=True)
    await killer
    # Assert
    assert state.is_failed()
    with Client(researcher.url, username=researcher.username,
                password=researcher.password) as client:
        tasks = [t.id for t in client.task.list(
            collaboration_id=federation.collaboration_id) if t.id > before]
        statuses = {task: client.task.status(task).value for task in tasks}
    assert len(tasks) == 2
    assert set(statuses.values()) == {"killed by user"}
