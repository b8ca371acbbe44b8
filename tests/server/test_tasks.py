"""POST /task rules, derived status, results paging, kill and delete."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

from tests.fixtures.server import ServerProcess
from tests.server.conftest import World, build_world
from v6flow.status import RunStatus, derive_task_status
from v6flow.wire import format_datetime, parse_datetime, utcnow


def test_create_task_makes_one_pending_run_per_organization(world: World) -> None:
    """Runs are pending, inputs verbatim, the task is shaped like v4's."""
    body = world.task_body()
    response = world.call("POST", "/task", world.researcher_token, json=body)
    assert response.status_code == 201
    task = response.json()
    assert task["status"] == "pending" and task["finished_at"] is None
    assert task["parent"] is None and task["collaboration"]["id"] == world.collaboration_id
    assert task["init_org"]["id"] == world.org_ids[0]
    assert task["databases"] == [{"label": "default",
                                  "parameters": json.dumps({"query": "select 1"},
                                                           separators=(",", ":"))}]
    assert task["runs"] == f"/api/run?task_id={task['id']}"
    runs = world.ok("GET", "/run", params={"task_id": task["id"], "include": "input"})["data"]
    assert sorted(r["organization"]["id"] for r in runs) == sorted(world.org_ids)
    inputs = {o["id"]: o["input"] for o in body["organizations"]}
    for run in runs:
        assert run["status"] == "pending" and run["input"] == inputs[run["organization"]["id"]]
        assert run["node"]["id"] == world.node_ids[run["organization"]["id"]]
        assert "result" not in run
    second = world.create_task()
    assert second["job_id"] > task["job_id"]


def test_task_for_organization_outside_collaboration_is_400(world: World) -> None:
    """The reason names the organization."""
    response = world.call("POST", "/task", world.researcher_token,
                          json=world.task_body([world.org_ids[0], world.outsider_id]))
    assert response.status_code == 400
    assert str(world.outsider_id) in response.json()["msg"]
    assert "not part of collaboration" in response.json()["msg"]


def test_task_for_organization_without_node_is_400(api_server: ServerProcess) -> None:
    """Every target organization needs a node in the collaboration."""
    world = build_world(api_server)
    # a collaboration that includes the outsider, which has no node there
    collab = world.ok("POST", "/collaboration", json={
        "name": f"c-{world.collaboration_id}-x", "organization_ids": [*world.org_ids,
                                                                       world.outsider_id]})
    body = world.task_body([world.outsider_id], collaboration_id=collab["id"])
    response = world.call("POST", "/task", world.root_token, json=body)
    assert response.status_code in (400, 401)
    researcher = world.call("POST", "/task", world.researcher_token, json=body)
    assert researcher.status_code == 400 and "no nodes registered" in researcher.json()["msg"]


def test_input_must_be_base64_json_in_unencrypted_collaboration(world: World) -> None:
    """Inputs that are not base64 of UTF-8 JSON are rejected with a reason."""
    for bad in ("%%%not-base64%%%", base64.b64encode(b"\xff\xfe").decode(),
                base64.b64encode(b"not json").decode()):
        body = world.task_body()
        body["organizations"][0]["input"] = bad
        response = world.call("POST", "/task", world.researcher_token, json=body)
        assert response.status_code == 400, bad
        assert "base64 encoded JSON" in response.json()["msg"]


def test_malformed_bodies_are_400_naming_the_field(world: World) -> None:
    """Schema errors name the field; broken JSON is 400 too; never 422 or {detail}."""
    body = world.task_body()
    del body["image"]
    missing = world.call("POST", "/task", world.researcher_token, json=body)
    assert missing.status_code == 400 and "image" in missing.json()["msg"]
    assert any(e["field"] == "image" for e in missing.json()["errors"])
    body = world.task_body()
    body["organizations"] = [{"input": "x"}]
    no_id = world.call("POST", "/task", world.researcher_token, json=body)
    assert no_id.status_code == 400 and "organizations.0.id" in no_id.json()["msg"]
    body = world.task_body()
    body["databases"] = [{"label": "x", "password": "nope"}]
    extra = world.call("POST", "/task", world.researcher_token, json=body)
    assert extra.status_code == 400 and "databases.0.password" in extra.json()["msg"]
    broken = world.call("POST", "/task", world.researcher_token, content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "detail" not in broken.json()


def test_task_status_is_derived_from_runs(world: World) -> None:
    """For several status combinations the task status equals the contract rule."""
    combos = [("pending", "pending"), ("initializing", "pending"), ("active", "pending"),
              ("completed", "active"), ("completed", "pending"), ("completed", "completed"),
              ("crashed", "completed"), ("crashed", "crashed"), ("failed", "crashed"),
              ("not allowed", "pending")]
    for statuses in combos:
        task = world.create_task()
        runs = sorted(world.runs(task["id"]), key=lambda r: r["organization"]["id"])
        pairs = [(r, st) for r, st in zip(runs, statuses, strict=True) if st != "pending"]
        for run, _status in pairs:  # start first, so a failure does not fail a started sibling
            world.ok("PATCH", f"/run/{run['id']}", world.node_token(run["organization"]["id"]),
                     json={"started_at": format_datetime(utcnow())})
        for run, status in sorted(pairs, key=lambda pair: RunStatus(pair[1]).is_failed):
            body: dict[str, str] = {"status": status}
            if RunStatus(status).is_finished:
                body["finished_at"] = format_datetime(utcnow())
            world.ok("PATCH", f"/run/{run['id']}", world.node_token(run["organization"]["id"]),
                     json=body)
        final = world.runs(task["id"])
        expected = derive_task_status(r["status"] for r in final).value
        status = world.ok("GET", f"/task/{task['id']}/status", world.researcher_token)
        assert status == {"status": expected}, statuses
        full = world.ok("GET", f"/task/{task['id']}")
        if expected == "completed":
            assert full["finished_at"] == max(r["finished_at"] for r in final)
        else:
            assert full["finished_at"] is None


def test_results_of_a_task_come_on_one_page(api_server: ServerProcess) -> None:
    """``/result?task_id=`` returns every result unless per_page is given (UserClient)."""
    world = build_world(api_server, organizations=13)  # 12 members: more than a page of 10
    task = world.create_task()
    body = world.ok("GET", "/result", params={"task_id": task["id"]})
    assert len(body["data"]) == len(world.org_ids)
    assert "next" not in body["links"]
    ids = [r["id"] for r in body["data"]]
    assert ids == sorted(ids, reverse=True)
    paged = world.call("GET", "/result", params={"task_id": task["id"], "per_page": 10})
    assert len(paged.json()["data"]) == 10 and "next" in paged.json()["links"]
    assert paged.headers["total-count"] == str(len(world.org_ids))


def test_kill_task_kills_runs_and_children(world: World) -> None:
    """Runs become 'killed by user' with finished_at; killing again is 400."""
    task = world.create_task()
    response = world.call("POST", "/kill/task", world.researcher_token, json={"id": task["id"]})
    assert response.status_code == 200
    killed = {item["run_id"] for item in response.json()["kill_list"]}
    runs = world.runs(task["id"])
    assert killed == {r["id"] for r in runs}
    for run in runs:
        assert run["status"] == "killed by user" and run["finished_at"] is not None
    assert world.ok("GET", f"/task/{task['id']}/status")["status"] == "killed by user"
    again = world.call("POST", "/kill/task", world.researcher_token, json={"id": task["id"]})
    assert again.status_code == 400


def test_delete_task_removes_it(world: World) -> None:
    """DELETE answers a msg; the task and its runs are gone."""
    task = world.create_task()
    response = world.call("DELETE", f"/task/{task['id']}", world.researcher_token)
    assert response.status_code == 200 and "msg" in response.json()
    assert world.call("GET", f"/task/{task['id']}").status_code == 404
    assert world.runs(task["id"]) == []


def test_task_list_filters(world: World) -> None:
    """Filters by job, parent, collaboration and status."""
    first = world.create_task()
    world.create_task()
    by_job = world.ok("GET", "/task", params={"job_id": first["job_id"]})["data"]
    assert [t["id"] for t in by_job] == [first["id"]]
    pending = world.ok("GET", "/task", params={"collaboration_id": world.collaboration_id,
                                               "status": "pending", "per_page": 100})
    assert first["id"] in {t["id"] for t in pending["data"]}
    roots = world.ok("GET", "/task", params={"collaboration_id": world.collaboration_id,
                                             "is_user_created": 1, "per_page": 100})["data"]
    assert all(t["parent"] is None for t in roots)
    assert parse_datetime(first["created_at"]) <= utcnow()


def test_encrypted_collaboration_refuses_readable_input(world: World) -> None:
    """CONTRACT §5 sanity check: base64 JSON input in an encrypted collaboration is a 400."""
    collab = world.ok("POST", "/collaboration", json={
        "name": f"enc-{world.collaboration_id}-{world.outsider_id}-{utcnow().timestamp()}",
        "organization_ids": world.org_ids, "encrypted": True})
    for org in world.org_ids:
        world.ok("POST", "/node", json={"collaboration_id": collab["id"], "organization_id": org})
    response = world.call("POST", "/task", world.researcher_token,
                          json=world.task_body(collaboration_id=collab["id"]))
    assert response.status_code == 400
    assert response.json()["msg"].startswith(
        f"Collaboration id={collab['id']} requires encryption")


def test_concurrent_task_creation_gives_distinct_jobs(world: World) -> None:
    """Parallel POST /task all succeed (no lock errors) and never share a job id."""
    bodies = [world.task_body() for _ in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(
            lambda body: world.call("POST", "/task", world.researcher_token, json=body), bodies))
    assert [r.status_code for r in responses] == [201] * len(bodies)
    jobs = [r.json()["job_id"] for r in responses]
    assert len(set(jobs)) == len(jobs)
