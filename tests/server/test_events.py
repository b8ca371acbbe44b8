"""The SSE push channel: sync first, new_task fast, kill/log events, node presence."""

from __future__ import annotations

import time

import httpx

from tests.server.conftest import World
from tests.server.sse import EventStream


def _wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_node_stream_gets_sync_then_new_task_within_a_second(world: World) -> None:
    """POST /task reaches the node's stream in well under a second."""
    org = world.org_ids[1]
    with EventStream(world.url, world.node_token(org)) as stream:
        stream.next("sync")
        start = time.monotonic()
        task = world.create_task()
        event = stream.next("new_task", timeout=5)
        latency = event.at - start
        assert latency < 1.0, f"new_task took {latency:.3f} s"
        assert event.data == {"id": task["id"], "parent_id": None,
                              "collaboration_id": world.collaboration_id,
                              "job_id": task["job_id"], "init_org_id": task["init_org"]["id"]}
        stream.next("ping", timeout=5)


def test_node_is_online_while_streaming(world: World) -> None:
    """Connecting marks the node online; closing marks it offline again."""
    org = world.org_ids[0]
    node_id = world.node_ids[org]
    with EventStream(world.url, world.node_token(org)) as stream:
        stream.next("sync")
        node = world.ok("GET", f"/node/{node_id}")
        assert node["status"] == "online" and node["last_seen"] is not None
    assert _wait_for(lambda: world.ok("GET", f"/node/{node_id}")["status"] == "offline")


def test_kill_reaches_the_node_and_logs_reach_the_user(world: World) -> None:
    """kill_containers goes to nodes; run_update and algorithm_log go to users."""
    org = world.org_ids[0]
    node_token = world.node_token(org)
    with EventStream(world.url, node_token) as node_stream, \
            EventStream(world.url, world.researcher_token) as user_stream:
        node_stream.next("sync")
        user_stream.next("sync")
        task = world.create_task()
        user_stream.next("new_task")
        run = next(r for r in world.runs(task["id"]) if r["organization"]["id"] == org)
        world.ok("POST", f"/run/{run['id']}/log", node_token, json={"lines": ["hello"]})
        log = user_stream.next("algorithm_log")
        assert log.data["run_id"] == run["id"] and log.data["lines"] == ["hello"]
        world.ok("POST", "/kill/task", world.researcher_token, json={"id": task["id"]})
        runs = world.runs(task["id"])
        killed: set[int] = set()
        for _organization in runs:  # one kill_containers per organization
            kill = node_stream.next("kill_containers")
            assert kill.data["collaboration_id"] == world.collaboration_id
            assert len({k["organization_id"] for k in kill.data["kill_list"]}) == 1
            killed |= {k["run_id"] for k in kill.data["kill_list"]}
        assert killed == {r["id"] for r in runs}
        update = user_stream.next("run_update")
        assert update.data["task_id"] == task["id"]


def test_stream_requires_a_token(world: World) -> None:
    """No token: 401 JSON."""
    response = httpx.get(f"{world.url}/events")
    assert response.status_code == 401 and "msg" in response.json()


def test_container_stream_sees_only_its_own_job(world: World) -> None:
    """A container follows run_update/algorithm_log of its job's tasks, nothing else."""
    org = world.org_ids[0]
    node_token = world.node_token(org)
    parent = world.create_task([org])
    other = world.create_task([org])
    token = world.container_token(parent, org)
    with EventStream(world.url, token) as stream:
        stream.next("sync")
        child = world.ok("POST", "/task", token, json=world.task_body([org]))
        foreign_run = world.runs(other["id"])[0]
        world.ok("POST", f"/run/{foreign_run['id']}/log", node_token, json={"lines": ["theirs"]})
        child_run = world.runs(child["id"])[0]
        world.ok("POST", f"/run/{child_run['id']}/log", node_token, json={"lines": ["mine"]})
        log = stream.next("algorithm_log")
        assert log.data["task_id"] == child["id"] and log.data["lines"] == ["mine"]
        assert log.data["job_id"] == parent["job_id"]
        world.ok("POST", "/kill/task", token, json={"id": child["id"]})
        update = stream.next("run_update")
        assert update.data["task_id"] == child["id"] and update.data["status"] == "killed by user"
    received = {e.name for e in list(stream.events.queue)}
    assert not received & {"new_task", "kill_containers"}
