"""Prefect-native central functions under the engine: k of n with artifacts, cancellation
(asyncio and the ``kill_on_cancellation`` hook), live logs before the end, caching."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import docker
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.context import FlowRunContext
from prefect.exceptions import Abort
from prefect.logging.handlers import APILogHandler
from prefect.states import Cancelling

from tests.flows.researcher import Researcher
from tests.prefect.test_prefect_fanout import (
    _credentials,
    _kill_first_active_task_of,
    _last_task_id,
    _server_tasks,
    _task_runs,
)
from v6flow.client import Client
from v6flow.client.federated import FanOutTracker
from v6flow.errors import RunFailed
from v6flow.prefect import cancellation, kill_on_cancellation, run_partial
from v6flow.prefect.cancellation import recorded_server_tasks

pytestmark = pytest.mark.docker

KILLED = "killed by user"


def _tasks_after(researcher: Researcher, collaboration_id: int, after: int) -> list[int]:
    with Client(researcher.url, username=researcher.username,
                password=researcher.password) as client:
        return sorted(t.id for t in client.task.list(collaboration_id=collaboration_id)
                      if t.id > after)


def _run_statuses(researcher: Researcher, task_ids: list[int],
                  client: Client | None = None) -> list[str]:
    if client is None:
        with Client(researcher.url, username=researcher.username,
                    password=researcher.password) as own:
            return _run_statuses(researcher, task_ids, own)
    return [str(r.status) for t in task_ids for r in client.run.list(task_id=t)]


async def _wait_until(check: Any, timeout: float, interval: float = 0.1) -> Any:
    """Call ``check`` (blocking, in a thread) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {check}")


async def _all_active(researcher: Researcher, collaboration_id: int, after: int,
                      count: int) -> list[int]:
    def check() -> list[int] | None:
        tasks = _tasks_after(researcher, collaboration_id, after)
        statuses = _run_statuses(researcher, tasks)
        return tasks if len(tasks) == count and statuses == ["active"] * count else None
    tasks: list[int] = await _wait_until(check, 90, 0.2)
    return tasks


def _logged_in(researcher: Researcher) -> Client:
    client = Client(researcher.url, username=researcher.username,
                    password=researcher.password)
    client.whoami()  # log in now, not inside the timed window
    return client


async def _assert_killed_promptly(researcher: Researcher, tasks: list[int], since: float,
                                  client: Client) -> None:
    """Every run of ``tasks`` is 'killed by user' within 2 s of ``since`` (monotonic);
    their containers go away. ``client`` is logged in beforehand."""
    left = 2.0 - (time.monotonic() - since)
    with client:
        await _wait_until(lambda: set(_run_statuses(researcher, tasks, client)) == {KILLED},
                          left, 0.05)
    assert time.monotonic() - since <= 2.0
    engine = docker.from_env()

    def no_containers() -> bool:  # sparse: no inspect of a container being removed
        return not any(engine.containers.list(all=True, sparse=True,
                                              filters={"label": f"v6flow.task_id={t}"})
                       for t in tasks)
    await _wait_until(no_containers, 30, 0.3)


async def test_k_of_n_with_status_table_and_progress_artifacts(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """One of three organizations is killed; min_responses=2 returns the other two and
    the flow run gets the status table and a finished progress artifact."""
    # Prepare
    victim = federation.organization_ids[0]
    names = {n.organization_id: n.organization_name for n in federation.nodes}
    before = _last_task_id(federation, researcher)
    killed: list[int] = []
    killer = asyncio.create_task(asyncio.to_thread(
        _kill_first_active_task_of, federation, researcher, victim, before, killed))

    @flow(name="k-of-n-test")
    async def k_of_n() -> dict[int, Any]:
        return await run_partial(_credentials(researcher), federation.collaboration_id,
                                 "sleep", image=test_algorithm_image, args=[4],
                                 min_responses=2)

    # Execute
    state = await k_of_n(return_state=True)
    await killer
    result = await state.result()
    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    by_key = {a.key: a for a in artifacts}
    rows = {row["organization"]: row for row in json.loads(by_key["sleep-organizations"].data)}
    # Assert
    assert killed
    assert result == {org: 4.0 for org in federation.organization_ids if org != victim}
    assert rows[names[victim]]["status"] == KILLED
    assert rows[names[victim]]["run id"] > 0
    assert all(rows[names[org]]["status"] == "completed" and rows[names[org]]["attempts"] == 1
               for org in result)
    assert float(by_key["sleep-progress"].data) == pytest.approx(100.0)


async def test_cancel_kills_all_server_tasks_and_logs_arrive_live(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """While sleep(60) runs at 3 orgs, each task run already holds its tagged node lines;
    cancelling the flow coroutine kills every server task within 2 s."""
    # Prepare
    before = _last_task_id(federation, researcher)
    run_ids: list[UUID] = []
    names = {n.organization_name for n in federation.nodes}

    @flow(name="sleep-everywhere-test", on_cancellation=[kill_on_cancellation],
          on_crashed=[kill_on_cancellation])
    async def sleep_everywhere() -> dict[int, Any]:
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        run_ids.append(context.flow_run.id)
        return await run_partial(_credentials(researcher), federation.collaboration_id,
                                 "sleep", image=test_algorithm_image, args=[60])

    running = asyncio.create_task(sleep_everywhere())
    tasks = await _all_active(researcher, federation.collaboration_id, before, 3)
    # Execute
    logs = await _task_run_logs_with(run_ids[0], names, "calling")
    statuses_at_log_time = _run_statuses(researcher, tasks)
    watcher = _logged_in(researcher)
    cancelled_at = time.monotonic()
    running.cancel()
    await _assert_killed_promptly(researcher, tasks, cancelled_at, watcher)
    # Assert
    with pytest.raises(asyncio.CancelledError):
        await running
    assert statuses_at_log_time == ["active"] * 3
    for name in names:
        assert any(name_of == f"sleep@{name}" and message.startswith(f"[{name} run ")
                   for name_of, message in logs), (name, logs)


async def test_cancelling_in_prefect_kills_all_server_tasks(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """set_flow_run_state(Cancelling) on the running flow: all 3 server tasks are killed
    within 2 s, the flow run ends Cancelled (the caller gets Abort)."""
    # Prepare
    before = _last_task_id(federation, researcher)
    run_ids: list[UUID] = []

    @flow(name="cancel-in-prefect-test")
    async def sleeper() -> dict[int, Any]:
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        run_ids.append(context.flow_run.id)
        return await run_partial(_credentials(researcher), federation.collaboration_id,
                                 "sleep", image=test_algorithm_image, args=[60])

    running = asyncio.create_task(sleeper())
    tasks = await _all_active(researcher, federation.collaboration_id, before, 3)
    # Execute
    watcher = _logged_in(researcher)
    async with get_client() as client:
        cancelled_at = time.monotonic()
        await client.set_flow_run_state(run_ids[0], Cancelling(), force=True)
    await _assert_killed_promptly(researcher, tasks, cancelled_at, watcher)
    (outcome,) = await asyncio.gather(running, return_exceptions=True)
    async with get_client() as client:
        final = (await client.read_flow_run(run_ids[0])).state
    # Assert
    assert isinstance(outcome, Abort), outcome
    assert final is not None and final.is_cancelled()


async def test_cancellation_hook_kills_the_recorded_server_tasks(
        federation: Any, test_algorithm_image: str, researcher: Researcher,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook, run as Prefect's runner runs it (another process: no in-memory registry),
    kills the server tasks recorded on the flow run, logging in via credentials_block."""
    # Prepare
    block = f"creds-{uuid4().hex[:8]}"
    await _credentials(researcher).asave(block)
    before = _last_task_id(federation, researcher)
    run_ids: list[UUID] = []

    @flow(name="hooked-test", on_cancellation=[kill_on_cancellation])
    async def hooked(credentials_block: str) -> dict[int, Any]:
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        run_ids.append(context.flow_run.id)
        from prefect_v6flow.credentials import V6flowServerCredentials

        creds = await V6flowServerCredentials.aload(credentials_block)
        return await run_partial(creds, federation.collaboration_id, "sleep",
                                 image=test_algorithm_image, args=[60])

    running = asyncio.create_task(hooked(block, return_state=True))
    tasks = await _all_active(researcher, federation.collaboration_id, before, 3)
    monkeypatch.setattr(cancellation, "_RUNNING", {})  # as in the runner's process
    flow_run = await _flow_run_with_labels(run_ids[0], 3)
    # Execute
    watcher = _logged_in(researcher)
    hooked_at = time.monotonic()
    await kill_on_cancellation(hooked, flow_run, None)
    await _assert_killed_promptly(researcher, tasks, hooked_at, watcher)
    state = await running
    # Assert
    assert sorted(recorded_server_tasks(flow_run.labels)) == tasks
    assert state.is_failed()
    with pytest.raises(RunFailed):
        await state.result()


async def test_cached_step_creates_no_server_task_in_a_new_flow_run(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """cache=timedelta: the second flow run reuses the result; no new server task."""
    # Prepare
    org = federation.organization_ids[1]
    extra = uuid4().hex  # stands in for the image digest; isolates this test's cache
    trackers: list[FanOutTracker] = []

    @flow(name="cached-test")
    async def cached() -> dict[int, Any]:
        trackers.append(FanOutTracker())
        return await run_partial(_credentials(researcher), federation.collaboration_id,
                                 "echo", image=test_algorithm_image, args=["cached"],
                                 organizations=[org], cache=timedelta(minutes=5),
                                 cache_key_extra=extra, tracker=trackers[-1])

    before = _last_task_id(federation, researcher)
    # Execute
    first = await cached()
    middle = _last_task_id(federation, researcher)
    second = await cached()
    # Assert
    assert first == second == {org: "cached"}
    assert _server_tasks(federation, researcher, before) == {org: 1}
    assert _last_task_id(federation, researcher) == middle
    assert trackers[0].outcomes[org].status == "completed"
    assert trackers[1].outcomes[org].status == "cached"


async def _flow_run_with_labels(flow_run_id: UUID, count: int, timeout: float = 30) -> Any:
    """The flow run, once ``count`` server tasks are recorded in its labels."""
    deadline = time.monotonic() + timeout
    while True:
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)
        if len(recorded_server_tasks(flow_run.labels)) >= count or time.monotonic() > deadline:
            return flow_run
        await asyncio.sleep(0.2)


async def _task_run_logs_with(flow_run_id: UUID, names: set[str], needle: str,
                              timeout: float = 30) -> list[tuple[str, str]]:
    """(task run name, message) of the flow run's task-run logs, once every org has a line
    containing ``needle``."""
    deadline = time.monotonic() + timeout
    found: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        await APILogHandler.aflush()
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        runs = {r.id: r.name for r in await _task_runs(flow_run_id)}
        found = [(runs.get(log.task_run_id, ""), log.message) for log in logs
                 if log.task_run_id is not None]
        if all(any(run == f"sleep@{n}" and needle in m for run, m in found) for n in names):
            return found
        await asyncio.sleep(0.3)
    return found
