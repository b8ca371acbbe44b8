"""Security review findings 4 and 8: who gets a container token, and what it may touch.

Finding 4: a node got a container token for any open task of its collaboration, even one
without a run for its organization, and could then create subtasks in another researcher's
job. Now a token is issued only for a run the node holds and has started.

Finding 8: a container token read the whole collaboration (another job's results). Now it
reads and writes its own job only, dies when its run finishes and expires after
``container_token_minutes``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import World, build_world
from v6flow.wire import format_datetime, json_to_bytes, result_to_wire, utcnow
from v6flow_server.settings import ServerSettings

SHORT_LIFETIME_MINUTES = 0.05  # 3 s


def _run_of(world: World, task: dict[str, Any], org_id: int) -> dict[str, Any]:
    return next(r for r in world.runs(task["id"]) if r["organization"]["id"] == org_id)


def _ask_token(world: World, task: dict[str, Any], org_id: int) -> Any:
    return world.call("POST", "/token/container", world.node_token(org_id),
                      json={"task_id": task["id"], "image": task["image"]})


def _finish(world: World, task: dict[str, Any], org_id: int, result: Any = None) -> None:
    run = _run_of(world, task, org_id)
    body = {"status": "completed", "finished_at": format_datetime(utcnow())}
    if result is not None:
        body["result"] = result_to_wire(json_to_bytes(result))
    world.ok("PATCH", f"/run/{run['id']}", world.node_token(org_id), json=body)


def test_no_token_for_a_task_without_a_run_of_the_node(world: World) -> None:
    """Node B asks a token for a task whose only run is org A's: refused (403)."""
    org_a, org_b = world.org_ids
    task = world.create_task([org_a])
    world.ok("PATCH", f"/run/{_run_of(world, task, org_a)['id']}", world.node_token(org_a),
             json={"status": "initializing"})
    response = _ask_token(world, task, org_b)
    assert response.status_code == 403, response.text
    assert "holds no run" in response.json()["msg"]


def test_no_token_for_a_pending_run(world: World) -> None:
    """The node's own run that it has not started (pending): refused; once started: issued."""
    org_a, org_b = world.org_ids
    task = world.create_task([org_a, org_b])
    refused = _ask_token(world, task, org_b)
    assert refused.status_code == 400, refused.text
    assert "has not been started" in refused.json()["msg"]
    world.ok("PATCH", f"/run/{_run_of(world, task, org_b)['id']}", world.node_token(org_b),
             json={"status": "initializing"})
    assert _ask_token(world, task, org_b).status_code == 200


def test_token_for_a_run_started_the_v4_way(world: World) -> None:
    """The v4 node PATCHes only ``started_at`` before it asks (CONTRACT §4.4): issued."""
    org = world.org_ids[1]
    task = world.create_task([org])
    world.ok("PATCH", f"/run/{_run_of(world, task, org)['id']}", world.node_token(org),
             json={"started_at": format_datetime(utcnow())})
    assert _run_of(world, task, org)["status"] == "pending"
    assert _ask_token(world, task, org).status_code == 200


def test_no_token_for_a_finished_run_of_an_open_task(world: World) -> None:
    """Org B's run is finished while A's is still open: B gets no new token."""
    org_a, org_b = world.org_ids
    task = world.create_task([org_a, org_b])
    _finish(world, task, org_b)
    response = _ask_token(world, task, org_b)
    assert response.status_code == 400, response.text
    assert world.ok("GET", f"/task/{task['id']}/status") == {"status": "pending"}


def test_container_reads_only_its_own_job(world: World) -> None:
    """Another job's task, runs and result are refused or absent; its own job is readable."""
    org_a, org_b = world.org_ids
    other = world.create_task([org_a, org_b])
    _finish(world, other, org_b, result={"secret": "of another job"})
    own = world.create_task([org_a])
    token = world.container_token(own, org_a)
    child = world.ok("POST", "/task", token, json=world.task_body([org_b]))
    foreign_run = _run_of(world, other, org_b)["id"]
    assert world.ok("GET", "/result", token, params={"task_id": other["id"]})["data"] == []
    assert world.call("GET", f"/result/{foreign_run}", token).status_code == 403
    assert world.call("GET", f"/run/{foreign_run}", token).status_code == 403
    assert world.call("GET", f"/task/{other['id']}", token).status_code == 403
    assert world.call("GET", f"/task/{other['id']}/status", token).status_code == 403
    assert world.ok("GET", "/run", token, params={"task_id": other["id"]})["data"] == []
    listed = world.ok("GET", "/task", token, params={"per_page": 1000})["data"]
    assert {t["id"] for t in listed} == {own["id"], child["id"]}
    own_runs = world.ok("GET", "/run", token, params={"per_page": 1000})["data"]
    assert {r["id"] for r in own_runs} == {
        r["id"] for task in (own, child) for r in world.runs(task["id"])}
    results = world.ok("GET", "/result", token, params={"task_id": child["id"]})["data"]
    assert [r["id"] for r in results] == [r["id"] for r in world.runs(child["id"])]
    assert world.ok("GET", f"/task/{child['id']}/status", token) == {"status": "pending"}


def test_container_still_reads_what_the_algorithm_client_needs(world: World) -> None:
    """Organizations and the collaboration stay readable (CONTRACT §2.2)."""
    task = world.create_task([world.org_ids[0]])
    token = world.container_token(task, world.org_ids[0])
    members = world.ok("GET", "/organization", token,
                       params={"collaboration_id": world.collaboration_id})["data"]
    assert {o["id"] for o in members} == set(world.org_ids)
    assert world.ok("GET", f"/organization/{world.org_ids[1]}", token)["id"] == world.org_ids[1]
    collaboration = world.ok("GET", f"/collaboration/{world.collaboration_id}", token)
    assert collaboration["id"] == world.collaboration_id


def test_container_cannot_write_runs(world: World) -> None:
    """PATCH /run and run logs are node-only, also for the container's own run."""
    org = world.org_ids[0]
    task = world.create_task([org])
    token = world.container_token(task, org)
    run_id = _run_of(world, task, org)["id"]
    assert world.call("PATCH", f"/run/{run_id}", token, json={"status": "active"}
                      ).status_code == 403
    assert world.call("POST", f"/run/{run_id}/log", token, json={"lines": ["x"]}
                      ).status_code == 403


def test_container_token_dies_with_its_run(world: World) -> None:
    """Once its run finished the token is refused, although the task still has open runs."""
    org_a, org_b = world.org_ids
    task = world.create_task([org_a, org_b])
    token = world.container_token(task, org_a)
    assert world.call("GET", f"/task/{task['id']}", token).status_code == 200
    _finish(world, task, org_a)
    assert world.ok("GET", f"/task/{task['id']}/status") == {"status": "pending"}
    response = world.call("GET", f"/task/{task['id']}", token)
    assert response.status_code == 401 and "run is finished" in response.json()["msg"]


def test_container_token_lifetime_is_the_setting(world: World) -> None:
    """``exp - iat`` is ``container_token_minutes`` (default: 7 days)."""
    task = world.create_task([world.org_ids[0]])
    claims = jwt.decode(world.container_token(task, world.org_ids[0]),
                        options={"verify_signature": False})
    default = ServerSettings.model_fields["container_token_minutes"].default
    assert claims["exp"] - claims["iat"] == pytest.approx(default * 60, abs=1)


#: ``max_tasks_per_job`` of the :func:`short_lived` server.
JOB_LIMIT = 4


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose container tokens live 3 s and whose jobs hold at most
    :data:`JOB_LIMIT` tasks."""
    directory: Path = tmp_path_factory.mktemp("short-lived")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env={"V6FLOW_SERVER_CONTAINER_TOKEN_MINUTES":
                                   str(SHORT_LIFETIME_MINUTES),
                                   "V6FLOW_SERVER_MAX_TASKS_PER_JOB": str(JOB_LIMIT)})
    yield proc
    proc.stop()


def test_container_token_expires(short_lived: ServerProcess) -> None:
    """After ``container_token_minutes`` the token is refused, although its run is open."""
    world = build_world(short_lived)
    task = world.create_task([world.org_ids[0]])
    token = world.container_token(task, world.org_ids[0])
    assert world.call("GET", f"/task/{task['id']}", token).status_code == 200
    claims = jwt.decode(token, options={"verify_signature": False})
    time.sleep(max(0.0, claims["exp"] - time.time()) + 1.0)
    response = world.call("GET", f"/task/{task['id']}", token)
    assert response.status_code == 401 and response.json()["msg"] == "Token has expired"


def test_a_runaway_job_is_stopped_at_the_job_limit(short_lived: ServerProcess) -> None:
    """An algorithm that creates subtasks without end gets a 400 naming the setting once its
    job holds ``max_tasks_per_job`` tasks; nothing past the limit is stored, and another
    job is not affected."""
    # Prepare
    world = build_world(short_lived)
    task = world.create_task([world.org_ids[0]])
    token = world.container_token(task, world.org_ids[0])
    # Execute
    answers = [world.call("POST", "/task", token, json=world.task_body([world.org_ids[0]]))
               for _ in range(JOB_LIMIT + 1)]
    # Assert
    codes = [a.status_code for a in answers]
    assert codes == [201] * (JOB_LIMIT - 1) + [400, 400]
    assert "max_tasks_per_job" in answers[-1].json()["msg"]
    job = world.ok("GET", "/task", params={"job_id": task["job_id"], "per_page": 100})
    assert len(job["data"]) == JOB_LIMIT
    assert world.create_task([world.org_ids[0]])["job_id"] != task["job_id"]
