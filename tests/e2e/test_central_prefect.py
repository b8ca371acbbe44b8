"""A central flow reports to a real Prefect server configured on the v6flow server.

The module starts ``prefect server start``, a v6flow server whose ``prefect.api_url`` is that
API, and 3 real nodes. The ``summary_statistics`` flow runs as a central task inside a node
container: it reaches Prefect only through its node proxy and ``/api/prefect`` with its
container token. Its flow run, the per-organization task runs, logs and the table artifact
are read back from Prefect itself; a container token of another job of the same
collaboration, a user token and a node token are refused there.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.deployments.prefect_server import PrefectServer, shared_prefect_server
from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import start_server
from tests.flows.fixtures import summary_image  # noqa: F401 - the fixture
from tests.flows.pooled import assert_matches_pandas, pandas_summary, pooled_frame
from v6flow.client import Client

COLUMNS = ["age", "bmi", "sex"]
CENTRAL_TIMEOUT = 300.0
#: Task runs are recorded from their events, a moment after the flow run ended.
RECORDED_WITHIN = 30.0


@pytest.fixture(scope="module")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The session's ``prefect server start``."""
    yield from shared_prefect_server(tmp_path_factory)


@pytest.fixture(scope="module")
def prefect_federation(prefect: PrefectServer, base_image: str, test_algorithm_image: str,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """3 organizations and nodes on a server that forwards central flows to ``prefect``."""
    directory = tmp_path_factory.mktemp("central-prefect")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env={"V6FLOW_SERVER_PREFECT__API_URL": prefect.url})
    fed = create_federation(server_url=proc.url, root_password=proc.root_password,
                            directory=directory, base_image=base_image,
                            test_image=test_algorithm_image)
    yield fed
    try:
        shutdown_federation(fed)
    finally:
        proc.stop()


@dataclass
class CentralRun:
    """The central task, its result and the run's log."""

    task_id: int
    job_id: int
    table: dict[str, Any]
    log: str


@pytest.fixture(scope="module")
def central(prefect_federation: Federation, summary_image: str) -> CentralRun:  # noqa: F811
    """The summary flow as a central task at the first organization (docs/central-tasks.md)."""
    fed = prefect_federation
    with Client(fed.server_url, username=fed.username, password=fed.password) as client:
        task = client.task.create(
            collaboration_id=fed.collaboration_id, organizations=fed.organization_ids[:1],
            image=summary_image, method="summary_statistics",
            kwargs={"columns": COLUMNS, "quantiles": [], "retries": 0,
                    "organizations": fed.organization_ids})
        status = client.wait_for_task(task.id, timeout=CENTRAL_TIMEOUT)
        (table,) = client.result.from_task(task.id).values()
    (run,) = fed.runs(task.id)
    assert status.value == "completed", run.get("log")
    return CentralRun(task_id=task.id, job_id=task.job_id, table=table, log=run["log"] or "")


def _prefect(prefect: PrefectServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{prefect.url}/{path}", json=body, timeout=30)
    assert response.status_code < 300, response.text
    return response.json()


def _flow_run(prefect: PrefectServer, task_id: int) -> dict[str, Any]:
    (flow_run,) = asyncio.run(_read_flow_runs(prefect, task_id))
    return flow_run


async def _read_flow_runs(prefect: PrefectServer, task_id: int) -> list[dict[str, Any]]:
    """Through Prefect's own client, as a Prefect user would."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    async with PrefectClient(api=prefect.url) as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[f"v6flow.task:{task_id}"])))
    return [run.model_dump(mode="json") for run in runs]


def _task_runs(prefect: PrefectServer, flow_run_id: str) -> dict[str, str]:
    """Name → state type of the flow run's task runs, once they are all final."""
    deadline = time.monotonic() + RECORDED_WITHIN
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        runs = _prefect(prefect, "POST", "task_runs/filter",
                        {"flow_runs": {"id": {"any_": [flow_run_id]}}})
        found = {run["name"]: run["state_type"] for run in runs}
        if found and all(state in ("COMPLETED", "FAILED", "CRASHED") for state in
                         found.values()):
            return found
        time.sleep(0.5)
    return found


@pytest.mark.docker
@pytest.mark.slow
def test_central_flow_run_and_its_task_runs_appear_in_prefect(
        prefect_federation: Federation, prefect: PrefectServer, central: CentralRun) -> None:
    """The result equals pandas; Prefect holds the flow run, tagged with the task, job and
    collaboration, one completed task run per organization, its logs and its table."""
    fed = prefect_federation
    # Assert: the analysis
    assert_matches_pandas(central.table, pandas_summary(pooled_frame(fed.csv_paths)[COLUMNS]))
    assert "Prefect: the server's Prefect API" in central.log
    # Assert: what Prefect holds
    flow_run = _flow_run(prefect, central.task_id)
    assert flow_run["state_type"] == "COMPLETED"
    assert {f"v6flow.job:{central.job_id}", f"v6flow.collaboration:{fed.collaboration_id}",
            f"v6flow.organization:{fed.organization_ids[0]}"} <= set(flow_run["tags"])
    names = {n.organization_id: n.organization_name for n in fed.nodes}
    assert _task_runs(prefect, flow_run["id"]) == {
        f"summary@{name}": "COMPLETED" for name in names.values()}
    logs = _prefect(prefect, "POST", "logs/filter",
                    {"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}, "limit": 200})
    assert any(f"from {len(fed.nodes)} organizations" in log["message"] for log in logs)
    artifacts = _prefect(prefect, "POST", "artifacts/filter",
                         {"artifacts": {"flow_run_id": {"any_": [flow_run["id"]]}}})
    assert "summary-statistics" in {artifact["key"] for artifact in artifacts}
    # Assert: the subtasks name the flow run that created them
    children = fed.get("task", parent_id=central.task_id, per_page=50)["data"]
    assert {child["flow_run_id"] for child in children} == {flow_run["id"]}


def _other_jobs_container_token(fed: Federation) -> str:
    """A container token of a pending task of another job in the same collaboration: an
    organization is added with a node that never runs, so its run stays ours to start."""
    org = fed.request("POST", "organization", json={"name": f"idle-{uuid.uuid4().hex[:6]}"})
    org_id = org.json()["id"]
    added = fed.request("POST", f"collaboration/{fed.collaboration_id}/organization",
                        json={"id": org_id})
    assert added.status_code == 200, added.text
    node = fed.request("POST", "node", json={"organization_id": org_id,
                                             "collaboration_id": fed.collaboration_id,
                                             "name": f"idle-{org_id}"})
    assert node.status_code == 201, node.text
    node_token = httpx.post(f"{fed.server_url}/token/node",
                            json={"api_key": node.json()["api_key"]}).json()["access_token"]
    task = fed.create_task("partial", organization_ids=[org_id], kwargs={"x": 1})
    (run,) = fed.runs(task["id"])
    headers = {"Authorization": f"Bearer {node_token}"}
    patched = httpx.patch(f"{fed.server_url}/run/{run['id']}", headers=headers,
                          json={"status": "initializing"})
    assert patched.status_code == 200, patched.text
    token = httpx.post(f"{fed.server_url}/token/container", headers=headers,
                       json={"task_id": task["id"], "image": task["image"]})
    assert token.status_code == 200, token.text
    return str(token.json()["container_token"])


@pytest.mark.docker
@pytest.mark.slow
def test_other_jobs_users_and_nodes_cannot_touch_the_flow_run(
        prefect_federation: Federation, prefect: PrefectServer, central: CentralRun) -> None:
    """Through /api/prefect, another job's container token can neither read nor change the
    central flow run (403), and user and node tokens are refused there (403)."""
    fed = prefect_federation
    flow_run = _flow_run(prefect, central.task_id)
    other = _other_jobs_container_token(fed)
    node = httpx.post(f"{fed.server_url}/token/node",
                      json={"api_key": fed.nodes[0].api_key}).json()["access_token"]
    url = f"{fed.server_url}/prefect/flow_runs/{flow_run['id']}"
    attempts = [
        ("GET", url, None),
        ("POST", f"{url}/set_state", {"state": {"type": "CANCELLED", "name": "Cancelled"},
                                      "force": True}),
        ("PATCH", url, {"name": "taken"}),
        ("POST", f"{fed.server_url}/prefect/logs/", [{
            "name": "x", "level": 20, "message": "injected", "timestamp":
            "2026-01-01T00:00:00Z", "flow_run_id": flow_run["id"], "task_run_id": None}]),
    ]
    for token in (other, fed.user_token(), node):
        for method, target, body in attempts:
            response = httpx.request(method, target, json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 403, (method, target, response.text)
    after = _flow_run(prefect, central.task_id)
    assert after["state_type"] == "COMPLETED" and after["name"] == flow_run["name"]
