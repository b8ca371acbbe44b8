"""Tasks through the client: create, wait via the push channel, results, kill, delete."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from v6flow import wire
from v6flow.client import AsyncClient, Client, LogLines
from v6flow.client.federated import PartialRequest, run_on_organization
from v6flow.errors import RunFailed, TaskTimeout
from v6flow.status import RunStatus

IMAGE = "v6flow-test/hand:latest"
SLOW_POLL = 60.0  # the safety-net poll must never be what wakes the waiter up


def _finish_all_later(world: Any, task_id: int, delay: float, results: dict[int, Any],
                      stamps: dict[str, float]) -> threading.Thread:
    """Finish every run of the task after ``delay`` s; record when the last PATCH returned."""

    def work() -> None:
        time.sleep(delay)
        for org, node in world.nodes.items():
            for run in node.runs_of(task_id):
                node.finish(int(run["id"]), results[org])
        stamps["last_patch"] = time.monotonic()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_create_sends_the_input_to_each_organization(researcher: Client, world: Any) -> None:
    """One run per organization, each with the base64 JSON input of the method."""
    # Execute
    task = researcher.task.create(world.collaboration_id, world.organization_ids, IMAGE, "echo",
                            args=[1], kwargs={"x": 2}, name="create-test")
    runs = researcher.run.list(task_id=task.id)
    # Assert
    assert {r.organization.id for r in runs} == set(world.organization_ids)
    inputs = [researcher.run.get(r.id).input or "" for r in runs]  # lists leave it out
    assert all(wire.input_from_wire(i) == wire.make_input("echo", [1], {"x": 2}) for i in inputs)
    assert researcher.task.status(task.id) is RunStatus.PENDING
    researcher.task.kill(task.id)


def test_sync_wait_wakes_on_push_within_half_a_second(researcher: Client, world: Any) -> None:
    """wait_for_task returns < 0.5 s after the last run's PATCH (push, not the poll)."""
    # Prepare
    task = researcher.task.create(world.collaboration_id, world.organization_ids, IMAGE, "echo")
    task_id = task.id
    expected = {org: {"org": org, "value": org * 1.5} for org in world.organization_ids}
    stamps: dict[str, float] = {}
    worker = _finish_all_later(world, task_id, 1.0, expected, stamps)
    # Execute
    status = researcher.wait_for_task(task_id, timeout=30, poll_interval=SLOW_POLL)
    returned = time.monotonic()
    worker.join()
    # Assert
    latency = returned - stamps["last_patch"]
    print(f"sync wait woke {latency * 1000:.1f} ms after the last PATCH")
    assert status is RunStatus.COMPLETED
    assert latency < 0.5
    assert researcher.result.from_task(task_id) == expected


async def test_async_wait_wakes_on_push_and_forwards_logs(server: Any, world: Any) -> None:
    """The async wait also wakes within 0.5 s, and live log lines reach on_log."""
    # Prepare
    async with AsyncClient(server.url, username=world.username,
                           password=world.password) as client:
        task = await client.task.create(world.collaboration_id, world.organization_ids,
                                        IMAGE, "echo")
        task_id = task.id
        expected = {org: [org] for org in world.organization_ids}
        stamps: dict[str, float] = {}
        seen: list[LogLines] = []

        def work() -> None:
            time.sleep(1.0)
            for node in world.nodes.values():
                for run in node.runs_of(task_id):
                    node.log(int(run["id"]), [f"hello from {node.organization_id}"])
            time.sleep(0.3)
            for org, node in world.nodes.items():
                for run in node.runs_of(task_id):
                    node.finish(int(run["id"]), expected[org])
            stamps["last_patch"] = time.monotonic()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        # Execute
        status = await client.wait_for_task(task_id, timeout=30, poll_interval=SLOW_POLL,
                                            on_log=seen.append)
        returned = time.monotonic()
        await asyncio.to_thread(worker.join)
        results = await client.result.from_task(task_id)
    # Assert
    latency = returned - stamps["last_patch"]
    print(f"async wait woke {latency * 1000:.1f} ms after the last PATCH")
    assert status is RunStatus.COMPLETED
    assert latency < 0.5
    assert results == expected
    lines = {line for batch in seen for line in batch.lines}
    assert lines == {f"hello from {org}" for org in world.organization_ids}


def test_wait_already_finished_task_returns_at_once(researcher: Client, world: Any) -> None:
    """A task that finished before the wait began is seen by the status read after subscribing."""
    # Prepare
    org = world.organization_ids[0]
    task = researcher.task.create(world.collaboration_id, [org], IMAGE, "echo")
    node = world.nodes[org]
    node.finish(int(node.runs_of(task.id)[0]["id"]), 42)
    # Execute
    started = time.monotonic()
    status = researcher.wait_for_task(task.id, timeout=10, poll_interval=SLOW_POLL)
    # Assert
    assert status is RunStatus.COMPLETED
    assert time.monotonic() - started < 2.0


def test_wait_times_out_then_kill_and_delete(researcher: Client, world: Any) -> None:
    """An unfinished task raises TaskTimeout; kill marks its runs killed; delete removes it."""
    # Prepare
    task = researcher.task.create(world.collaboration_id, world.organization_ids, IMAGE, "sleep")
    task_id = task.id
    # Execute
    started = time.monotonic()
    with pytest.raises(TaskTimeout):
        researcher.wait_for_task(task_id, timeout=0.8, poll_interval=SLOW_POLL)
    waited = time.monotonic() - started
    researcher.task.kill(task_id)
    killed = researcher.task.status(task_id)
    researcher.task.delete(task_id)
    # Assert
    assert 0.7 < waited < 3.0
    assert killed is RunStatus.KILLED
    remaining = researcher.task.list(collaboration_id=world.collaboration_id)
    assert all(t.id != task_id for t in remaining)


async def test_failed_run_raises_run_failed_with_log_tail(server: Any, world: Any) -> None:
    """run_on_organization turns a crashed run into RunFailed with status and log tail."""
    # Prepare
    org = world.organization_ids[1]
    node = world.nodes[org]
    request = PartialRequest(collaboration_id=world.collaboration_id, image=IMAGE,
                             method="boom")

    async def crash_soon() -> None:
        for _ in range(100):
            runs = await asyncio.to_thread(
                lambda: [r for r in node.runs_of_collaboration() if r["status"] == "pending"])
            if runs:
                await asyncio.to_thread(node.finish, int(runs[0]["id"]), None,
                                        status="crashed", log="line 1\nTraceback: boom")
                return
            await asyncio.sleep(0.1)

    async with AsyncClient(server.url, username=world.username,
                           password=world.password) as client:
        # Execute
        crasher = asyncio.create_task(crash_soon())
        with pytest.raises(RunFailed) as caught:
            await run_on_organization(client, request, org, timeout=30)
        await crasher
    # Assert
    assert caught.value.status == "crashed"
    assert caught.value.organization_id == org
    assert "Traceback: boom" in caught.value.log_tail


def test_task_logs_iterates_live_lines_until_finished(researcher: Client, world: Any) -> None:
    """Client.task_logs yields pushed log lines as they come and stops when the task ends."""
    # Prepare
    org = world.organization_ids[0]
    node = world.nodes[org]
    task = researcher.task.create(world.collaboration_id, [org], IMAGE, "echo")
    task_id = task.id

    def work() -> None:
        time.sleep(0.5)
        run_id = int(node.runs_of(task_id)[0]["id"])
        node.log(run_id, ["first"])
        node.log(run_id, ["second", "third"])
        time.sleep(0.2)
        node.finish(run_id, "ok")

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    # Execute
    lines = [line for batch in researcher.task_logs(task_id, timeout=30) for line in batch.lines]
    worker.join()
    # Assert
    assert lines == ["first", "second", "third"]
