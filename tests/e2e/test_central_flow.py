"""A Prefect flow as a vantage6-style central task: it runs inside a node's algorithm container.

The task's method is the flow's name (``summary_statistics``) and it goes to one organization.
The node runs the ``v6flow/summary`` image; the wrapper finds the flow through
``V6FLOW_CENTRAL_FLOWS``. This session's server forwards to no Prefect API, so the flow's
function runs without Prefect's engine (tests/e2e/test_central_prefect.py has a server with
one), against the node proxy with the container token. The flow fans out to every
organization as subtasks of the same job (same image), waits by push through the proxy and
returns the table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.federation import Federation
from tests.fixtures.reference import ReferencePython
from tests.flows.fixtures import summary_image  # noqa: F401 - the fixture
from tests.flows.pooled import assert_matches_pandas, pandas_summary, pooled_frame
from v6flow.client import Client

SCRIPT = (Path(__file__).parent / "reference_user_client.py").read_text(encoding="utf-8")
CENTRAL_TIMEOUT = 300.0
COLUMNS = ["age", "bmi", "sex"]


def _central_input() -> dict[str, Any]:
    return {"method": "summary_statistics",
            "kwargs": {"columns": COLUMNS, "quantiles": [], "retries": 0,
                       "timeout_seconds": 120}}


@pytest.mark.docker
@pytest.mark.slow
def test_flow_runs_as_central_task_inside_a_node_container(
        federation: Federation, summary_image: str) -> None:  # noqa: F811
    """The flow's result equals pandas on the pooled CSVs; subtasks share the job; the
    central run's log says it ran without a Prefect API and holds every organization's
    node log lines."""
    # Execute: as docs/central-tasks.md shows it
    with Client(federation.server_url, username=federation.username,
                password=federation.password) as client:
        task = client.task.create(
            collaboration_id=federation.collaboration_id,
            organizations=federation.organization_ids[:1], image=summary_image,
            method="summary_statistics", kwargs=_central_input()["kwargs"])
        status = client.wait_for_task(task.id, timeout=CENTRAL_TIMEOUT)
        (table,) = client.result.from_task(task.id).values()
    # Assert
    (run,) = federation.runs(task.id)
    assert status.value == "completed" and run["status"] == "completed", run.get("log")
    pooled = pooled_frame(federation.csv_paths)[COLUMNS]
    assert table["organizations"] == len(federation.nodes)
    assert_matches_pandas(table, pandas_summary(pooled))
    children = federation.get("task", parent_id=task.id, per_page=50)["data"]
    assert len(children) == len(federation.nodes)
    assert {c["job_id"] for c in children} == {task.job_id}
    assert {c["image"] for c in children} == {summary_image}
    log = run["log"] or ""
    assert "Prefect: none: the server has no Prefect API" in log
    assert f"from {len(federation.nodes)} organizations" in log
    for organization_id in federation.organization_ids:
        assert f"[organization {organization_id} run " in log


@pytest.mark.docker
@pytest.mark.slow
def test_unmodified_vantage6_client_runs_the_flow_as_a_central_task(
        federation: Federation, summary_image: str,  # noqa: F811
        reference_client: ReferencePython) -> None:
    """vantage6-client 4.15.2 creates the central task like any v4 algorithm's ``central``."""
    url = urlsplit(federation.server_url)
    out = reference_client.run_json(
        SCRIPT,
        f"{url.scheme}://{url.hostname}", str(url.port), federation.username,
        federation.password, str(federation.collaboration_id),
        str(federation.organization_ids[0]), summary_image, json.dumps(_central_input()),
    )
    assert out["status"] == "completed"
    (table,) = out["results"]
    pooled = pooled_frame(federation.csv_paths)[COLUMNS]
    assert_matches_pandas(table, pandas_summary(pooled))
