"""PATCH /run by nodes, sibling failure, live logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.server.conftest import World
from v6flow.wire import format_datetime, parse_datetime, utcnow


def _run_of(world: World, task_id: int, org_id: int) -> dict[str, Any]:
    return next(r for r in world.runs(task_id) if r["organization"]["id"] == org_id)


def test_only_the_owning_node_may_patch(world: World) -> None:
    """Another organization's node gets 401/403 and the run is unchanged."""
    task = world.create_task()
    run = _run_of(world, task["id"], world.org_ids[0])
    other = world.node_token(world.org_ids[1])
    response = world.call("PATCH", f"/run/{run['id']}", other, json={"status": "active"})
    assert response.status_code in (401, 403) and "msg" in response.json()
    assert world.ok("GET", f"/run/{run['id']}")["status"] == "pending"


def test_patch_keeps_absent_fields_and_refuses_finished_runs(world: World) -> None:
    """Absent fields stay; datetimes with or without µs parse; finished runs are frozen."""
    task = world.create_task()
    run = _run_of(world, task["id"], world.org_ids[0])
    token = world.node_token(world.org_ids[0])
    started = utcnow().replace(microsecond=0)
    world.ok("PATCH", f"/run/{run['id']}", token,
             json={"started_at": started.isoformat(), "log": "first"})  # no microseconds
    world.ok("PATCH", f"/run/{run['id']}", token, json={"status": "active"})
    current = world.ok("GET", f"/run/{run['id']}")
    assert current["log"] == "first" and current["status"] == "active"
    assert parse_datetime(current["started_at"]) == started
    finished = utcnow()
    world.ok("PATCH", f"/run/{run['id']}", token, json={
        "status": "completed", "result": "eyJ4IjogMX0=",
        "finished_at": format_datetime(finished) + "+00:00"})
    done = world.ok("GET", f"/result/{run['id']}")
    assert done["result"] == "eyJ4IjogMX0=" and done["blob_storage_used"] is False
    assert parse_datetime(world.ok("GET", f"/run/{run['id']}")["finished_at"]) == finished
    again = world.call("PATCH", f"/run/{run['id']}", token, json={"status": "active"})
    assert again.status_code == 400
    assert again.json()["msg"] == "Cannot update an already finished algorithm run!"


def test_patch_rejects_unknown_status_and_bad_datetime(world: World) -> None:
    """Both are 400 naming the field."""
    task = world.create_task()
    run = _run_of(world, task["id"], world.org_ids[0])
    token = world.node_token(world.org_ids[0])
    bad_status = world.call("PATCH", f"/run/{run['id']}", token, json={"status": "exploded"})
    assert bad_status.status_code == 400 and "status" in bad_status.json()["msg"]
    bad_time = world.call("PATCH", f"/run/{run['id']}", token, json={"started_at": "yesterday"})
    assert bad_time.status_code == 400 and "started_at" in bad_time.json()["msg"]


def test_failure_marks_unstarted_siblings_failed(world: World) -> None:
    """A crash fails the runs that never started; started ones are left alone."""
    task = world.create_task()
    first = _run_of(world, task["id"], world.org_ids[0])
    second = _run_of(world, task["id"], world.org_ids[1])
    world.ok("PATCH", f"/run/{first['id']}", world.node_token(world.org_ids[0]), json={
        "status": "crashed", "finished_at": format_datetime(utcnow())})
    sibling = world.ok("GET", f"/run/{second['id']}")
    assert sibling["status"] == "failed"
    assert isinstance(parse_datetime(sibling["finished_at"]), datetime)
    assert world.ok("GET", f"/task/{task['id']}/status")["status"] == "failed"


def test_log_lines_are_appended_by_the_owner_only(world: World) -> None:
    """POST /run/<id>/log appends; other nodes are refused."""
    task = world.create_task()
    run = _run_of(world, task["id"], world.org_ids[0])
    token = world.node_token(world.org_ids[0])
    world.ok("POST", f"/run/{run['id']}/log", token, json={"lines": ["a", "b"]})
    world.ok("POST", f"/run/{run['id']}/log", token, json={"lines": ["c"]})
    assert world.ok("GET", f"/run/{run['id']}")["log"] == "a\nb\nc\n"
    other = world.call("POST", f"/run/{run['id']}/log", world.node_token(world.org_ids[1]),
                       json={"lines": ["x"]})
    assert other.status_code in (401, 403)


def test_open_runs_for_a_node_include_the_task(world: World) -> None:
    """The node's work query: state=open&node_id=&include=task."""
    task = world.create_task()
    node_id = world.node_ids[world.org_ids[1]]
    token = world.node_token(world.org_ids[1])
    body = world.ok("GET", "/run", token, params={"state": "open", "node_id": node_id,
                                                  "include": "task", "task_id": task["id"]})
    assert len(body["data"]) == 1
    run = body["data"][0]
    assert run["task"]["id"] == task["id"] and run["task"]["image"] == task["image"]
    assert run["task"]["databases"][0]["label"] == "default"
    assert run["task"]["init_org"]["id"] == world.org_ids[0]


def test_killed_run_keeps_the_log_the_node_reports_after_the_kill(world: World) -> None:
    """After a kill the owning node's report stores the log only; status and time stay."""
    task = world.create_task()
    run = _run_of(world, task["id"], world.org_ids[0])
    world.ok("POST", "/kill/task", world.researcher_token, json={"id": task["id"]})
    killed = world.ok("GET", f"/run/{run['id']}")
    token = world.node_token(world.org_ids[0])
    world.ok("PATCH", f"/run/{run['id']}", token, json={
        "status": "killed by user", "log": "tick 0\ntick 1", "result": "eyJ4IjogMX0=",
        "finished_at": format_datetime(utcnow())})
    after = world.ok("GET", f"/run/{run['id']}")
    assert after["log"] == "tick 0\ntick 1"
    assert after["status"] == "killed by user"
    assert after["finished_at"] == killed["finished_at"]
    assert not world.ok("GET", f"/result/{run['id']}")["result"]
    refused = world.call("PATCH", f"/run/{run['id']}", token, json={"status": "completed"})
    assert refused.status_code == 400
