"""``/api/prefect``: a real v6flow server forwarding container requests to a real Prefect API.

No node runs here: container tokens are minted as a node would (``World.container_token``)
and the requests are those a central flow's Prefect client makes (``tests/e2e/
test_central_prefect.py`` runs the real flow in a real container). Each job's container may
touch its own flow run only; users, nodes and other jobs get 403.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deployments.prefect_server import (
    PREFECT,
    QUIET_ENV,
    PrefectServer,
    free_port,
    shared_prefect_server,
)
from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import HTTP, World, auth, build_world

PREFECT_URL = "V6FLOW_SERVER_PREFECT__API_URL"
PENDING = {"type": "PENDING", "name": "Pending"}


@pytest.fixture(scope="session")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The session's ``prefect server start``."""
    yield from shared_prefect_server(tmp_path_factory)


def _server(directory: Path, **env: str) -> ServerProcess:
    return start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env=env)


@pytest.fixture(scope="module")
def world(prefect: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server whose ``prefect.api_url`` is the session's Prefect API, and its world."""
    proc = _server(tmp_path_factory.mktemp("prefect-gateway"), **{PREFECT_URL: prefect.url})
    yield build_world(proc)
    proc.stop()


class Container:
    """What one job's container sends to ``/api/prefect`` (as Prefect's client would)."""

    def __init__(self, world: World, org: int | None = None) -> None:
        self.org = org if org is not None else world.org_ids[0]
        self.task = world.create_task([self.org])
        self.token = world.container_token(self.task, self.org)
        self.url = f"{world.url}/prefect"

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return HTTP.request(method, f"{self.url}/{path}", headers=auth(self.token), **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def flow_run(self, **fields: Any) -> dict[str, Any]:
        """Create a flow run the way Prefect's engine does."""
        flow = self.ok("POST", "flows/", json={"name": "central-test"})
        body = {"flow_id": flow["id"], "state": PENDING, "parameters": {}, "tags": [],
                "parent_task_run_id": None, **fields}
        run: dict[str, Any] = self.ok("POST", "flow_runs/", json=body)
        return run


def _direct(prefect: PrefectServer, method: str, path: str, **kwargs: Any) -> Any:
    """Ask the Prefect API itself (what its UI shows)."""
    response = HTTP.request(method, f"{prefect.url}/{path}", **kwargs)
    assert response.status_code < 300, (response.status_code, response.text)
    return response.json() if response.content else None


def _event(name: str, resource: str, *related: str) -> dict[str, Any]:
    return {"occurred": "2026-01-01T00:00:00Z", "event": name, "id": str(uuid.uuid4()),
            "resource": {"prefect.resource.id": resource},
            "related": [{"prefect.resource.id": r, "prefect.resource.role": r.split(".")[1]}
                        for r in related], "payload": {}}


def _log(flow_run: str) -> dict[str, Any]:
    return {"name": "test", "level": 20, "message": "hello", "timestamp":
            "2026-01-01T00:00:00Z", "flow_run_id": flow_run, "task_run_id": None}


def test_flow_run_gets_the_tasks_ownership_tags(world: World, prefect: PrefectServer) -> None:
    """Tags the container sends under ``v6flow.`` are replaced by its task, job,
    collaboration and organization; Prefect stores exactly those."""
    container = Container(world)
    run = container.flow_run(tags=["mine", "v6flow.task:1", "v6flow"])
    expected = ["mine", "v6flow", f"v6flow.task:{container.task['id']}",
                f"v6flow.job:{container.task['job_id']}",
                f"v6flow.collaboration:{world.collaboration_id}",
                f"v6flow.organization:{container.org}"]
    assert run["tags"] == expected
    assert _direct(prefect, "GET", f"flow_runs/{run['id']}")["tags"] == expected


def test_container_does_what_its_flow_run_needs(world: World, prefect: PrefectServer) -> None:
    """State, name, labels, logs, events and artifacts of its own flow run all reach
    Prefect; ``admin/version`` names the UI."""
    container = Container(world)
    run = container.flow_run()
    version = container.call("GET", "admin/version")
    assert version.status_code == 200
    assert version.headers["x-v6flow-prefect-ui"] == prefect.ui_url
    container.ok("POST", f"flow_runs/{run['id']}/set_state",
                 json={"state": {"type": "RUNNING", "name": "Running"}, "force": False})
    container.ok("PATCH", f"flow_runs/{run['id']}", json={"name": "renamed"})
    container.ok("PATCH", f"flow_runs/{run['id']}/labels", json={"v6flow.server-task.7": "x"})
    container.ok("POST", "logs/", json=[_log(run["id"])])
    container.ok("POST", "events", json=[_event(
        "prefect.flow-run.heartbeat", f"prefect.flow-run.{run['id']}", "prefect.flow.x")])
    artifact = container.ok("POST", "artifacts/", json={
        "key": "central-test", "type": "progress", "data": 0.0, "flow_run_id": run["id"]})
    container.ok("PATCH", f"artifacts/{artifact['id']}", json={"data": 100.0})
    stored = _direct(prefect, "GET", f"flow_runs/{run['id']}")
    assert stored["state_type"] == "RUNNING" and stored["name"] == "renamed"
    assert stored["labels"]["v6flow.server-task.7"] == "x"
    logs = _direct(prefect, "POST", "logs/filter",
                   json={"logs": {"flow_run_id": {"any_": [run["id"]]}}})
    assert [log["message"] for log in logs] == ["hello"]
    assert _direct(prefect, "GET", f"artifacts/{artifact['id']}")["data"] == 100.0


@pytest.mark.parametrize("request_of", [
    lambda run: ("GET", f"flow_runs/{run}", None),
    lambda run: ("POST", f"flow_runs/{run}/set_state",
                 {"state": {"type": "CANCELLED", "name": "Cancelled"}, "force": True}),
    lambda run: ("PATCH", f"flow_runs/{run}", {"name": "stolen"}),
    lambda run: ("PATCH", f"flow_runs/{run}/labels", {"stolen": "yes"}),
    lambda run: ("POST", "logs/", [_log(run)]),
    lambda run: ("POST", "events", [_event("prefect.flow-run.Cancelled",
                                           f"prefect.flow-run.{run}")]),
    lambda run: ("POST", "events", [_event("v6flow.run.failed", "v6flow.organization.1",
                                           f"prefect.flow-run.{run}")]),
    lambda run: ("POST", "artifacts/", {"key": "stolen", "type": "markdown", "data": "x",
                                        "flow_run_id": run}),
], ids=["read", "set_state", "rename", "labels", "logs", "event", "related-event",
        "artifact"])
def test_another_jobs_container_is_refused(world: World, prefect: PrefectServer,
                                           request_of: Any) -> None:
    """A container of another job (same collaboration) gets 403 and Prefect is untouched."""
    owner, other = Container(world), Container(world, world.org_ids[1])
    run = owner.flow_run()
    method, path, body = request_of(run["id"])
    response = other.call(method, path, json=body)
    assert response.status_code == 403, response.text
    stored = _direct(prefect, "GET", f"flow_runs/{run['id']}")
    assert stored["state_type"] == "PENDING" and stored["name"] == run["name"]
    assert "stolen" not in stored["labels"]
    assert _direct(prefect, "POST", "logs/filter",
                   json={"logs": {"flow_run_id": {"any_": [run["id"]]}}}) == []


def test_another_jobs_container_cannot_update_an_artifact(world: World) -> None:
    """A progress artifact of job A cannot be changed by job B's container (403)."""
    owner, other = Container(world), Container(world, world.org_ids[1])
    run = owner.flow_run()
    artifact = owner.ok("POST", "artifacts/", json={
        "key": "mine", "type": "progress", "data": 1.0, "flow_run_id": run["id"]})
    assert other.call("PATCH", f"artifacts/{artifact['id']}",
                      json={"data": 99.0}).status_code == 403


@pytest.mark.parametrize("who", ["user", "node"])
def test_user_and_node_tokens_get_403(world: World, who: str) -> None:
    """Only containers use /api/prefect: a user's or a node's token is refused."""
    token = world.researcher_token if who == "user" else world.node_token(world.org_ids[0])
    for method, path in (("GET", "admin/version"), ("POST", "flows/")):
        response = world.call(method, f"/prefect/{path}", token, json={"name": "x"})
        assert response.status_code == 403, response.text


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "deployments/"), ("POST", "flow_runs/filter"), ("POST", "task_runs/filter"),
    ("POST", "block_documents/filter"), ("GET", "work_pools/"), ("POST", "variables/filter"),
    ("POST", "v2/concurrency_limits/increment"), ("POST", "automations/"),
    ("GET", "flow_runs/../deployments/"), ("DELETE", "flow_runs/{own}"),
    ("PUT", "flow_runs/{own}"),
])
def test_requests_beyond_the_flow_run_are_refused(world: World, prefect: PrefectServer,
                                                  method: str, path: str) -> None:
    """Deployments, filters, blocks, work pools, variables, limits, automations: 403;
    DELETE and PUT: 405; the container's own flow run survives."""
    container = Container(world)
    run = container.flow_run()
    response = container.call(method, path.format(own=run["id"]), json={})
    assert response.status_code == (405 if method in ("DELETE", "PUT") else 403), response.text
    assert _direct(prefect, "GET", f"flow_runs/{run['id']}")["id"] == run["id"]


@pytest.mark.parametrize("field", ["deployment_id", "parent_task_run_id", "work_pool_name"])
def test_flow_run_of_a_deployment_or_subflow_is_refused(world: World, field: str) -> None:
    """A container creates only top-level flow runs of no deployment or work pool (403)."""
    container = Container(world)
    flow = container.ok("POST", "flows/", json={"name": "central-test"})
    value = "pool" if field == "work_pool_name" else str(uuid.uuid4())
    response = container.call("POST", "flow_runs/", json={
        "flow_id": flow["id"], "state": PENDING, field: value})
    assert response.status_code == 403 and field in response.json()["msg"]


def test_idempotency_key_never_answers_another_tasks_flow_run(world: World) -> None:
    """Job B naming job A's idempotency key gets a new flow run of its own."""
    owner, other = Container(world), Container(world, world.org_ids[1])
    mine = owner.flow_run(idempotency_key="same-key")
    theirs = other.flow_run(idempotency_key="same-key")
    assert theirs["id"] != mine["id"]
    assert f"v6flow.task:{other.task['id']}" in theirs["tags"]


def test_tags_stay_the_tasks_after_an_update(world: World, prefect: PrefectServer) -> None:
    """An update naming another task's tag keeps the owner's tags: the other job stays out."""
    owner, other = Container(world), Container(world, world.org_ids[1])
    run = owner.flow_run()
    owner.ok("PATCH", f"flow_runs/{run['id']}",
             json={"tags": ["x", f"v6flow.task:{other.task['id']}"]})
    tags = _direct(prefect, "GET", f"flow_runs/{run['id']}")["tags"]
    assert f"v6flow.task:{owner.task['id']}" in tags
    assert f"v6flow.task:{other.task['id']}" not in tags
    assert other.call("GET", f"flow_runs/{run['id']}").status_code == 403


@pytest.mark.parametrize("event", [
    _event("prefect.deployment.triggered", "prefect.deployment.1"),
    _event("v6flow.run.failed", "v6flow.organization.1"),
    _event("v6flow.run.failed", "v6flow.organization.1", "prefect.flow-run.{own}",
           "prefect.deployment.1"),
], ids=["about-a-deployment", "names-no-flow-run", "names-a-deployment"])
def test_events_beyond_the_flow_run_are_refused(world: World, event: dict[str, Any]) -> None:
    """Events about other kinds of objects, or about no flow run, are refused (403)."""
    container = Container(world)
    run = container.flow_run()
    body = [{**event, "related": [{**r, "prefect.resource.id": r["prefect.resource.id"]
                                   .format(own=run["id"])} for r in event["related"]]}]
    assert container.call("POST", "events", json=body).status_code == 403


def test_finished_runs_token_is_refused(world: World) -> None:
    """Once the container's run is finished its token stops working here too (401)."""
    container = Container(world)
    run = container.flow_run()
    world.call("POST", "/kill/task", world.researcher_token, json={"id": container.task["id"]})
    assert container.call("GET", f"flow_runs/{run['id']}").status_code == 401


def test_server_without_prefect_api_answers_404(tmp_path: Path) -> None:
    """No ``prefect.api_url``: a container is told so (404), which makes it run the flow
    without any Prefect API."""
    proc = _server(tmp_path)
    try:
        world = build_world(proc)
        container = Container(world)
        response = container.call("GET", "admin/version")
        assert response.status_code == 404 and "prefect.api_url" in response.json()["msg"]
    finally:
        proc.stop()


@contextlib.contextmanager
def _prefect_with_auth(directory: Path, auth_string: str) -> Iterator[str]:
    """A ``prefect server start`` that requires HTTP basic authentication."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(QUIET_ENV)
    env.update({"PREFECT_HOME": str(directory / "home"),
                "PREFECT_SERVER_API_AUTH_STRING": auth_string})
    basic = {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    with (directory / "prefect.log").open("wb") as out:
        process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1",
                                    "--port", str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (directory / "prefect.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", headers=basic, timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_server_sends_its_own_credentials_never_the_container_token(tmp_path: Path) -> None:
    """A Prefect API behind basic auth accepts the forwarded requests (the server's
    ``prefect.auth_string``) and refuses the container token itself (401)."""
    auth_string = f"v6flow:{secrets.token_urlsafe(12)}"
    with _prefect_with_auth(tmp_path / "prefect", auth_string) as prefect_url:
        proc = _server(tmp_path / "server", **{PREFECT_URL: prefect_url,
                                               "V6FLOW_SERVER_PREFECT__AUTH_STRING": auth_string})
        try:
            container = Container(build_world(proc))
            run = container.flow_run()
            direct = httpx.get(f"{prefect_url}/flow_runs/{run['id']}",
                               headers=auth(container.token), timeout=10)
            assert direct.status_code == 401
        finally:
            proc.stop()
