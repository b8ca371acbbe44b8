"""Central functions: subtasks through the proxy, one job, foreign images refused."""

from __future__ import annotations

import pandas as pd

from tests.fixtures.federation import Federation
from v6flow.wire import result_from_wire


def test_central_sum_equals_pooled_pandas(federation: Federation) -> None:
    """central_sum creates subtasks via the proxy, waits, combines = pandas on pooled CSVs."""
    # Prepare
    column = "age"
    pooled = pd.concat([pd.read_csv(p) for p in federation.csv_paths])[column].dropna()
    # Execute
    task = federation.create_task("central_sum", kwargs={
        "column": column, "organizations": federation.organization_ids},
        organization_ids=federation.organization_ids[:1])
    (run,) = federation.wait_for_runs(task["id"], timeout=90)
    # Assert
    assert run["status"] == "completed", run["log"]
    (item,) = federation.results(task["id"])
    result = result_from_wire(item["result"])
    assert result["count"] == int(pooled.count())
    assert abs(result["sum"] - float(pooled.sum())) < 1e-6 * abs(float(pooled.sum()))
    subtask = federation.get(f"task/{result['subtask_id']}")
    assert subtask["job_id"] == task["job_id"]
    assert subtask["parent"]["id"] == task["id"]
    sub_runs = federation.runs(subtask["id"])
    assert sorted(r["organization"]["id"] for r in sub_runs) == sorted(
        federation.organization_ids)
    assert {r["status"] for r in sub_runs} == {"completed"}


def test_subtask_with_another_image_is_refused(federation: Federation) -> None:
    """A container may only create subtasks with its own image: the server answers 401."""
    task = federation.create_task("spawn_foreign", kwargs={"image": "v6flow/other:latest"},
                                  organization_ids=federation.organization_ids[:1])
    (run,) = federation.wait_for_runs(task["id"])
    assert run["status"] == "completed", run["log"]
    (item,) = federation.results(task["id"])
    outcome = result_from_wire(item["result"])
    assert outcome["refused"] is True
    assert "401" in outcome["message"]
