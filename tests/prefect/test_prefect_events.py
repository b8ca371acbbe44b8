"""Prefect events of fan-outs, and the links between server tasks and flow runs (issue 12).

Real engine (the session's test harness), real federation. Events are read back from the
Prefect API (``POST /events/filter``), related to the flow run that emitted them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)

from prefect_v6flow.credentials import V6flowServerCredentials
from tests.deployments.summary_checks import artifact_rows
from tests.flows.researcher import Researcher
from tests.prefect_records import flow_run_events
from v6flow.client import Client
from v6flow.prefect import V6flowEvent, run_partial
from v6flow.prefect.reporting import task_link
from v6flow.status import RunStatus

pytestmark = pytest.mark.docker


def _credentials(researcher: Researcher) -> V6flowServerCredentials:
    return V6flowServerCredentials(url=researcher.url, username=researcher.username,
                                   password=researcher.password)  # type: ignore[arg-type]


@flow(name="events-test")
async def fan_out(credentials: V6flowServerCredentials, collaboration_id: int, method: str,
                  image: str, args: list[Any], organizations: list[int] | None = None,
                  min_responses: int | None = None, allow_failures: bool = False,
                  timeout_seconds: float | None = None) -> dict[int, Any]:
    """One partial at each organization, under a chosen policy."""
    return await run_partial(credentials, collaboration_id, method, image=image, args=args,
                             organizations=organizations, min_responses=min_responses,
                             allow_failures=allow_failures, timeout_seconds=timeout_seconds)


def _tasks_after(researcher: Researcher, collaboration_id: int, after: int) -> list[Any]:
    with Client(researcher.url, username=researcher.username,
                password=researcher.password) as client:
        return [t for t in client.task.list(collaboration_id=collaboration_id)
                if t.id > after]


def _last_task_id(researcher: Researcher, collaboration_id: int) -> int:
    return max((t.id for t in _tasks_after(researcher, collaboration_id, 0)),
               default=0)


def _named(events: list[dict[str, Any]], name: V6flowEvent) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name.value]


def _related_ids(event: dict[str, Any], role: str) -> set[str]:
    return {r["prefect.resource.id"] for r in event["related"]
            if r.get("prefect.resource.role") == role}


async def test_tasks_record_their_flow_run_and_the_status_table_links_them(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """Every server task of a flow run carries its id; each status-table row links its task."""
    # Prepare
    before = _last_task_id(researcher, federation.collaboration_id)
    # Execute
    state = await fan_out(_credentials(researcher), federation.collaboration_id, "echo",
                          test_algorithm_image, ["hi"], return_state=True)
    flow_run_id = state.state_details.flow_run_id
    tasks = _tasks_after(researcher, federation.collaboration_id, before)
    async with get_client() as api:
        (table,) = await api.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["echo-organizations"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    # Assert
    assert state.is_completed(), state
    assert len(tasks) == len(federation.nodes)
    assert {t.flow_run_id for t in tasks} == {str(flow_run_id)}
    assert sorted(row["task"] for row in artifact_rows(table.data)) == sorted(
        f"{researcher.url}/task/{t.id}" for t in tasks)


def test_task_links_go_to_the_web_ui_when_its_address_is_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``V6FLOW_UI_URL`` set: ``<ui>/tasks/<id>``; unset: the API's ``/task/<id>``."""
    monkeypatch.delenv("V6FLOW_UI_URL", raising=False)
    api = task_link("http://h:7601/api", 7)
    monkeypatch.setenv("V6FLOW_UI_URL", "https://ui.example/")
    assert (api, task_link("http://h:7601/api", 7)) == (
        "http://h:7601/api/task/7", "https://ui.example/tasks/7")


async def test_a_fan_out_that_meets_its_minimum_says_so_naming_its_tasks(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """``v6flow.fanout.met-minimum`` on the collaboration, related to every task; no run
    event when every organization answered."""
    # Prepare
    before = _last_task_id(researcher, federation.collaboration_id)
    # Execute
    state = await fan_out(_credentials(researcher), federation.collaboration_id, "echo",
                          test_algorithm_image, ["hi"], min_responses=2, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    events = await flow_run_events(flow_run_id, {V6flowEvent.FANOUT_MET_MINIMUM.value: 1})
    tasks = _tasks_after(researcher, federation.collaboration_id, before)
    # Assert
    (met,) = _named(events, V6flowEvent.FANOUT_MET_MINIMUM)
    assert met["resource"]["prefect.resource.id"] == (
        f"v6flow.collaboration.{federation.collaboration_id}")
    assert met["resource"]["v6flow.method"] == "echo"
    assert met["payload"]["required"] == 2
    assert met["payload"]["succeeded"] == sorted(federation.organization_ids)
    assert _related_ids(met, "task") == {f"v6flow.task.{t.id}" for t in tasks}
    assert [e["event"] for e in events] == [V6flowEvent.FANOUT_MET_MINIMUM.value]


async def test_failed_organizations_emit_run_failed_and_the_fan_out_missed_its_minimum(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """Two organizations whose partial raises: one ``v6flow.run.failed`` per organization
    (resource the organization, related its task, its run and the flow run), then
    ``v6flow.fanout.missed-minimum`` naming both."""
    # Prepare
    chosen = federation.organization_ids[:2]
    before = _last_task_id(researcher, federation.collaboration_id)
    # Execute
    state = await fan_out(_credentials(researcher), federation.collaboration_id, "boom",
                          test_algorithm_image, ["boom-for-events"], organizations=chosen,
                          allow_failures=True, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    events = await flow_run_events(flow_run_id, {V6flowEvent.RUN_FAILED.value: 2,
                                                 V6flowEvent.FANOUT_MISSED_MINIMUM.value: 1})
    tasks = {t.id: t for t in _tasks_after(researcher, federation.collaboration_id, before)}
    # Assert
    assert state.is_failed(), state
    failed = _named(events, V6flowEvent.RUN_FAILED)
    assert sorted(e["resource"]["prefect.resource.id"] for e in failed) == sorted(
        f"v6flow.organization.{org}" for org in chosen)
    for event in failed:
        (task,) = _related_ids(event, "task")
        org = int(event["resource"]["prefect.resource.id"].rsplit(".", 1)[1])
        assert int(task.rsplit(".", 1)[1]) in tasks
        assert event["payload"]["organization_id"] == org
        status = RunStatus(event["payload"]["status"])  # "crashed": the partial raised
        assert status.is_failed and status is not RunStatus.KILLED
        assert "boom-for-events" in event["payload"]["reason"]
        assert _related_ids(event, "flow-run") == {f"prefect.flow-run.{flow_run_id}"}
        assert len(_related_ids(event, "run")) == 1
    (missed,) = _named(events, V6flowEvent.FANOUT_MISSED_MINIMUM)
    assert missed["payload"]["required"] == 1 and missed["payload"]["succeeded"] == []
    assert sorted(missed["payload"]["failures"]) == sorted(str(org) for org in chosen)
    assert _related_ids(missed, "failed-organization") == {
        f"v6flow.organization.{org}" for org in chosen}


@pytest.mark.slow
async def test_an_offline_node_emits_killed_and_offline_then_online_when_back(
        federation: Any, test_algorithm_image: str, researcher: Researcher) -> None:
    """A stopped node: its organization's attempt times out (``v6flow.run.killed``), its
    node is reported offline, the fan-out still meets ``min_responses``; the node started
    again, the next round there completes and ``v6flow.node.online`` follows."""
    # Prepare
    node = federation.nodes[-1]
    others = len(federation.nodes) - 1
    credentials = _credentials(researcher)

    @flow(name="offline-node-test")
    async def offline_then_back() -> list[dict[int, Any]]:
        first = await run_partial(credentials, federation.collaboration_id, "echo",
                                  image=test_algorithm_image, args=["a"], timeout_seconds=6,
                                  min_responses=others)
        await asyncio.to_thread(_restart, federation, node)
        second = await run_partial(credentials, federation.collaboration_id, "echo",
                                   image=test_algorithm_image, args=["b"],
                                   organizations=[node.organization_id], timeout_seconds=120)
        return [first, second]

    federation.stop_node(node)
    try:
        await asyncio.to_thread(_wait_status, federation, node, "offline")
        # Execute
        state = await offline_then_back(return_state=True)  # type: ignore[call-overload]
    finally:
        if node.proc is None:
            federation.start_node(node)
            federation.wait_online(node)
    flow_run_id: UUID = state.state_details.flow_run_id
    events = await flow_run_events(flow_run_id, {V6flowEvent.RUN_KILLED.value: 1,
                                                 V6flowEvent.NODE_OFFLINE.value: 1,
                                                 V6flowEvent.NODE_ONLINE.value: 1,
                                                 V6flowEvent.FANOUT_MET_MINIMUM.value: 2})
    first, second = await state.result()
    # Assert
    assert sorted(first) == sorted(set(federation.organization_ids) - {node.organization_id})
    assert second == {node.organization_id: "b"}
    (killed,) = _named(events, V6flowEvent.RUN_KILLED)
    assert killed["resource"]["prefect.resource.id"] == (
        f"v6flow.organization.{node.organization_id}")
    assert killed["payload"]["reason"].startswith("timed out after")
    (offline,) = _named(events, V6flowEvent.NODE_OFFLINE)
    (online,) = _named(events, V6flowEvent.NODE_ONLINE)
    for event in (offline, online):
        assert event["resource"]["prefect.resource.id"] == f"v6flow.node.{node.node_id}"
        assert _related_ids(event, "organization") == {
            f"v6flow.organization.{node.organization_id}"}
    assert offline["occurred"] < online["occurred"]
    assert not _named(events, V6flowEvent.RUN_FAILED)


def _restart(federation: Any, node: Any) -> None:
    federation.start_node(node)
    federation.wait_online(node)


def _wait_status(federation: Any, node: Any, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while federation.get(f"node/{node.node_id}").get("status") != status:
        assert time.monotonic() < deadline, f"node {node.name} not {status}"
        time.sleep(0.2)
