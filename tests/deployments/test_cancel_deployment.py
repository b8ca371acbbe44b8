"""Cancelling a *deployed* flow run in Prefect kills its runs on every node (issue 3).

Real local Prefect server, real ``prefect deploy`` of tests/deployments/sleep.prefect.yaml
(its flow runs ``sleep(120)`` of the basic test image at the 3 organizations), a real
``prefect worker start`` (process work pool, 1 s polling) and the real federation. Once every
organization's run is active on its node, the flow run is moved to Cancelling through the
Prefect API, which is what the UI's *Cancel* button and ``prefect flow-run cancel`` do.

What happens (Prefect 3.9): the worker learns of Cancelling from the API's event stream,
sends the flow-run process the cancel intent and SIGTERM; the engine cancels the flow's
coroutines, so each organization's wait kills its server task (``POST /kill/task``) before
the process exits. The worker then runs the flow's ``on_cancellation`` hooks in a fresh
process (``kill_on_cancellation``: kills what the flow-run labels recorded, a no-op here)
and only then sets the flow run Cancelled.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import docker
import pytest

from prefect_v6flow import V6flowServerCredentials
from tests.deployments.prefect_cli import prefect, process_worker
from tests.deployments.prefect_server import REPO_ROOT, PrefectServer, prefect_api
from tests.flows.researcher import Researcher
from v6flow.client import Client
from v6flow.prefect.cancellation import recorded_server_tasks

PREFECT_FILE = REPO_ROOT / "tests" / "deployments" / "sleep.prefect.yaml"
DEPLOYMENT = "sleep-everywhere/sleep-everywhere"
POOL = "v6flow-cancel-test"
KILLED = "killed by user"
#: The requirement: every run is killed within this many seconds of the cancel request.
KILL_DEADLINE = 2.0
#: Worker-log lines that mean the cancellation hook did not do its job.
HOOK_ERRORS = ("An error was encountered while running hook", "Runner failed to retrieve flow",
               "cannot load the credentials block", "no credentials to kill",
               "cannot read the flow run's recorded server tasks")
#: Worker-log milestones (message fragment → name) and the log's time stamp.
MILESTONES = {"Crash detected": "flow process got SIGTERM",
              "was terminated": "flow process exited",
              "Cancelled flow run": "worker set Cancelled"}
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) \|")


def _login(researcher: Researcher) -> Client:
    client = Client(researcher.url, username=researcher.username,
                    password=researcher.password)
    client.whoami()  # log in now, not inside a timed window
    return client


def _last_task_id(client: Client, collaboration_id: int) -> int:
    return max((t.id for t in client.task.list(collaboration_id=collaboration_id)),
               default=0)


def _runs_after(client: Client, collaboration_id: int, after: int) -> dict[int, list[Any]]:
    """``{task_id: runs}`` of the collaboration's tasks with an id above ``after``."""
    tasks = [t.id for t in client.task.list(collaboration_id=collaboration_id)
             if t.id > after]
    return {t: client.run.list(task_id=t) for t in sorted(tasks)}


async def _poll(check: Any, timeout: float, interval: float, what: str) -> Any:
    """Call blocking ``check`` in a thread until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(interval)


async def _recorded_labels(flow_run_id: UUID, count: int, timeout: float = 15) -> Any:
    """The flow run's labels once ``count`` server tasks are recorded (or at ``timeout``):
    the flow labels them as it creates the tasks, through the Prefect API."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    async with get_client() as api:
        while True:
            labels = (await api.read_flow_run(flow_run_id)).labels
            if len(recorded_server_tasks(labels)) >= count or time.monotonic() > deadline:
                return labels
            await asyncio.sleep(0.2)


def _milestones(worker_log: str, since: datetime) -> dict[str, float]:
    """Seconds from ``since`` (local wall clock) to the first worker-log line of each
    milestone after it (the worker streams the flow-run process's output)."""
    found: dict[str, float] = {}
    for line in worker_log.splitlines():
        stamp = STAMP.match(line)
        if stamp is None:
            continue
        hours, minutes, seconds = int(stamp[1]), int(stamp[2]), float(stamp[3])
        at = since.replace(hour=hours, minute=minutes, second=int(seconds),
                           microsecond=int(seconds % 1 * 1e6))
        offset = (at - since).total_seconds()
        for fragment, name in MILESTONES.items():
            if fragment in line and name not in found and offset >= -0.01:
                found[name] = round(offset, 2)
    return found


@pytest.mark.slow
@pytest.mark.docker
async def test_cancelling_a_deployed_flow_run_kills_its_runs_on_every_node(
        prefect_server: PrefectServer, federation: Any, test_algorithm_image: str,
        researcher: Researcher, tmp_path: Path) -> None:
    """Cancelling → every server task killed within 2 s, logs kept, Cancelled, no containers."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    # Prepare
    prefect(prefect_server, "work-pool", "create", POOL, "--type", "process", "--overwrite")
    prefect(prefect_server, "--no-prompt", "deploy", "--all",
            "--prefect-file", str(PREFECT_FILE.relative_to(REPO_ROOT)))
    block_name = f"researcher-{uuid.uuid4().hex[:8]}"
    watcher = _login(researcher)
    collaboration = federation.collaboration_id
    before = _last_task_id(watcher, collaboration)
    count = len(federation.nodes)
    seconds: dict[str, float] = {}
    with prefect_api(prefect_server):
        await V6flowServerCredentials(url=researcher.url, username=researcher.username,
                                      password=researcher.password).asave(block_name)  # type: ignore[arg-type]
    with process_worker(prefect_server, POOL, tmp_path / "worker.log") as worker_log, \
            prefect_api(prefect_server), watcher:
        flow_run = await run_deployment(  # type: ignore[misc]  # sync/async dispatch union
            DEPLOYMENT, timeout=0, parameters={
                "collaboration_id": collaboration, "credentials_block": block_name,
                "image": test_algorithm_image, "seconds": 120})

        def all_active() -> dict[int, list[Any]] | None:
            runs = _runs_after(watcher, collaboration, before)
            statuses = [r.status for rs in runs.values() for r in rs]
            logged = all(r.log for rs in runs.values() for r in rs)
            return runs if statuses == ["active"] * count and logged else None

        active = await _poll(all_active, 120, 0.2, "every organization's run active, logging")
        tasks = sorted(active)
        logs_before = {r.id: r.log or "" for rs in active.values() for r in rs}
        labels = await _recorded_labels(flow_run.id, count)
        # Execute
        async with get_client() as api:
            cancelled_at = datetime.now()
            started = time.monotonic()
            answer = await api.set_flow_run_state(flow_run.id, Cancelling(
                message="cancelled by test_cancel_deployment"))

        def all_killed() -> bool:
            return all(r.status == KILLED for t in tasks for r in watcher.run.list(task_id=t))

        await _poll(all_killed, 60, 0.05, "every run killed")
        seconds["all runs killed"] = round(time.monotonic() - started, 2)
        async with get_client() as api:
            while not (state := (await api.read_flow_run(flow_run.id)).state).is_final():
                if time.monotonic() - started > 90:
                    break
                await asyncio.sleep(0.1)
        seconds["flow run final"] = round(time.monotonic() - started, 2)
        engine = docker.from_env()

        def no_containers() -> bool:
            return not any(engine.containers.list(
                all=True, filters={"label": f"v6flow.task_id={t}"}) for t in tasks)

        await _poll(no_containers, 30, 0.3, "the runs' containers removed")
        runs_after = [r for t in tasks for r in watcher.run.list(task_id=t)]
    worker_text = worker_log.read_text(errors="replace")
    seconds.update(_milestones(worker_text, cancelled_at))
    report = f"seconds after the cancel request: {seconds}\nstate: {state!r}\n" \
             f"--- worker log ---\n{worker_text[-5000:]}"
    print(f"cancel → {seconds}")  # the measured figures (pytest -s or -rP)
    # Assert
    assert answer.status.value == "ACCEPT", answer
    assert sorted(recorded_server_tasks(labels)) == tasks  # what the hook reads
    assert seconds["all runs killed"] <= KILL_DEADLINE, report
    assert [r.status for r in runs_after] == [KILLED] * count
    for run in runs_after:  # the log streamed while the run was active, and more, is kept
        assert (run.log or "").startswith(logs_before[run.id].rstrip()), (run, logs_before)
    assert state is not None and state.is_cancelled(), report
    assert not [e for e in HOOK_ERRORS if e in worker_text], report
