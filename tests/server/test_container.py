"""Container tokens and the subtask rules (CONTRACT §6 step 7)."""

from __future__ import annotations

from typing import Any

import jwt

from tests.fixtures.server import ServerProcess
from tests.server.conftest import World, build_world
from v6flow.wire import format_datetime, utcnow


def _container_token(world: World, task: dict[str, Any], org_id: int) -> str:
    return world.container_token(task, org_id)


def test_container_token_carries_v4_claims(world: World) -> None:
    """``sub`` is a dict naming its run, databases are label + params."""
    task = world.create_task()
    token = _container_token(world, task, world.org_ids[0])
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["client_type"] == "container"
    sub = claims["sub"]
    assert sub["task_id"] == task["id"] and sub["image"] == task["image"]
    assert sub["node_id"] == world.node_ids[world.org_ids[0]]
    assert sub["organization_id"] == world.org_ids[0]
    assert sub["collaboration_id"] == world.collaboration_id
    assert sub["databases"] == [{"query": "select 1", "label": "default"}]
    own_run = [r for r in world.runs(task["id"]) if r["organization"]["id"] == world.org_ids[0]]
    assert sub["run_id"] == own_run[0]["id"]


def test_container_token_request_rules(world: World) -> None:
    """Other image 401, unknown task 400, finished task 400."""
    task = world.create_task()
    node = world.node_token(world.org_ids[0])
    run = next(r for r in world.runs(task["id"]) if r["organization"]["id"] == world.org_ids[0])
    world.ok("PATCH", f"/run/{run['id']}", node, json={"status": "initializing"})
    other_image = world.call("POST", "/token/container", node,
                             json={"task_id": task["id"], "image": "v6flow-test/other"})
    assert other_image.status_code == 401
    unknown = world.call("POST", "/token/container", node,
                         json={"task_id": 10**9, "image": task["image"]})
    assert unknown.status_code == 400
    world.call("POST", "/kill/task", world.researcher_token, json={"id": task["id"]})
    finished = world.call("POST", "/token/container", node,
                          json={"task_id": task["id"], "image": task["image"]})
    assert finished.status_code == 400 and finished.json()["msg"] == "Task is already finished!"


def test_subtasks_inherit_job_and_may_nest(world: World) -> None:
    """A child gets the parent's job and image; a grandchild is allowed too."""
    parent = world.create_task([world.org_ids[0]])
    token = _container_token(world, parent, world.org_ids[0])
    child_resp = world.call("POST", "/task", token, json=world.task_body())
    assert child_resp.status_code == 201, child_resp.text
    child = child_resp.json()
    assert child["parent"]["id"] == parent["id"] and child["job_id"] == parent["job_id"]
    assert child["init_org"]["id"] == world.org_ids[0] and child["image"] == parent["image"]
    child_token = _container_token(world, child, world.org_ids[1])
    grandchild = world.call("POST", "/task", child_token, json=world.task_body([world.org_ids[0]]))
    assert grandchild.status_code == 201
    assert grandchild.json()["parent"]["id"] == child["id"]
    assert grandchild.json()["job_id"] == parent["job_id"]
    assert grandchild.json()["init_org"]["id"] == world.org_ids[1]
    children = world.ok("GET", "/task", token, params={"parent_id": parent["id"]})["data"]
    assert [c["id"] for c in children] == [child["id"]]
    status = world.ok("GET", f"/task/{child['id']}/status", token)
    assert status == {"status": "initializing"}  # the run that child_token was issued for


def test_container_with_other_image_or_finished_parent_is_refused(world: World) -> None:
    """Foreign image → 401; once the parent finished the token is dead (401)."""
    parent = world.create_task([world.org_ids[0]])
    token = _container_token(world, parent, world.org_ids[0])
    foreign = world.call("POST", "/task", token,
                         json=world.task_body(image="v6flow-test/somebody-else"))
    assert foreign.status_code == 401
    assert foreign.json()["msg"] == "Container-token is not valid"
    run = world.runs(parent["id"])[0]
    world.ok("PATCH", f"/run/{run['id']}", world.node_token(world.org_ids[0]), json={
        "status": "completed", "finished_at": format_datetime(utcnow())})
    late = world.call("POST", "/task", token, json=world.task_body())
    assert late.status_code in (400, 401) and "msg" in late.json()


def test_container_sees_only_its_collaboration(api_server: ServerProcess, world: World) -> None:
    """Tasks, runs and results of another collaboration are out of reach."""
    other = build_world(api_server)
    foreign_task = other.create_task()
    task = world.create_task()
    token = _container_token(world, task, world.org_ids[0])
    assert world.call("GET", f"/task/{foreign_task['id']}", token).status_code in (401, 403, 404)
    foreign_run = other.runs(foreign_task["id"])[0]["id"]
    assert world.call("GET", f"/run/{foreign_run}", token).status_code in (401, 403, 404)
    listed = world.ok("GET", "/result", token, params={"task_id": foreign_task["id"]})
    assert listed["data"] == []
    own = world.ok("GET", "/result", token, params={"task_id": task["id"]})
    assert len(own["data"]) == len(world.org_ids)
    wrong_collab = world.call("POST", "/task", token, json={
        **world.task_body(), "collaboration_id": other.collaboration_id})
    assert wrong_collab.status_code == 401


def test_container_kills_only_within_its_job(world: World) -> None:
    """A central function may kill its own subtasks (timeouts), never another job's task."""
    parent = world.create_task([world.org_ids[0]])
    other = world.create_task([world.org_ids[0]])
    token = _container_token(world, parent, world.org_ids[0])
    child = world.ok("POST", "/task", token, json=world.task_body([world.org_ids[1]]))
    foreign = world.call("POST", "/kill/task", token, json={"id": other["id"]})
    assert foreign.status_code == 403 and "msg" in foreign.json()
    assert world.ok("GET", f"/task/{other['id']}/status", world.researcher_token) == {
        "status": "pending"}
    world.ok("POST", "/kill/task", token, json={"id": child["id"]})
    assert world.ok("GET", f"/task/{child['id']}/status", token) == {"status": "killed by user"}
    assert world.ok("GET", f"/task/{parent['id']}/status", token) == {
        "status": "initializing"}  # the parent's own run is untouched
