"""deployments/prefect.yaml end to end: deploy, a process worker, a deployment run over 3 nodes.

Real local Prefect server, real ``prefect deploy`` and ``prefect worker start`` processes,
the real federation (v6flow server + 3 node processes on Docker). The summary result is
read back through the Prefect API (table artifact, task runs, logs) and compared with pandas
on the pooled CSVs.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from prefect_v6flow import V6flowServerCredentials
from tests.deployments.prefect_cli import prefect, process_worker
from tests.deployments.prefect_server import REPO_ROOT, PrefectServer, prefect_api
from tests.deployments.summary_checks import artifact_rows, assert_rows_match, expected_rows
from tests.flows.pooled import pandas_summary, pooled_frame
from tests.flows.researcher import Researcher
from tests.prefect_records import recorded_task_runs

PREFECT_FILE = REPO_ROOT / "deployments" / "prefect.yaml"
SUMMARY_DEPLOYMENT = "summary-statistics/process"
RUN_TIMEOUT = 300.0


@pytest.mark.slow
@pytest.mark.docker
async def test_summary_deployment_runs_on_a_process_worker_and_equals_pandas(
        prefect_server: PrefectServer, federation: Any, own_summary_image: str,
        researcher: Researcher, tmp_path: Path) -> None:
    """deploy --all → worker → run_deployment → Completed; artifact and task runs are right."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.deployments import run_deployment

    # Prepare
    spec = yaml.safe_load(PREFECT_FILE.read_text(encoding="utf-8"))
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    pool = next(d["work_pool"]["name"] for d in spec["deployments"]
                if d["name"] == "process"
                and d["entrypoint"].startswith("flows/v6flow_flows/summary/"))
    for name in sorted(pools):  # deploy --all needs every pool of the file
        prefect(prefect_server, "work-pool", "create", name, "--overwrite", "--type",
                "process" if name == pool else "docker")
    deployed = prefect(prefect_server, "--no-prompt", "deploy", "--all",
                        "--prefect-file", str(PREFECT_FILE.relative_to(REPO_ROOT)))
    block_name = f"researcher-{uuid.uuid4().hex[:8]}"
    with prefect_api(prefect_server):
        await V6flowServerCredentials(url=researcher.url, username=researcher.username,
                                      password=researcher.password).asave(block_name)  # type: ignore[arg-type]
    parameters = {"federation": {"collaboration_id": federation.collaboration_id,
                                 "credentials_block": block_name, "image": own_summary_image,
                                 "retries": 0, "timeout_seconds": 120}}
    # Execute
    with process_worker(prefect_server, pool, tmp_path / "worker.log") as worker_log, \
            prefect_api(prefect_server):
        flow_run = await run_deployment(  # type: ignore[misc]  # sync/async dispatch union
            SUMMARY_DEPLOYMENT, parameters=parameters, timeout=RUN_TIMEOUT, poll_interval=1)
        async with get_client() as api:
            deployments = await api.read_deployments()
            run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
            task_runs = await recorded_task_runs(api, flow_run.id,
                                                 expected=2 * len(federation.nodes))
            artifacts = await api.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["summary-statistics"])),
                flow_run_filter=run_filter)
            logs = await api.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(
                any_=[flow_run.id])))
    # Assert
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), (
        f"{flow_run.state}\n--- worker ---\n{worker_log.read_text(errors='replace')[-4000:]}")
    # every deployment of prefect.yaml (the session's server may hold other tests' too)
    assert {d["name"] for d in spec["deployments"]} <= {d.name for d in deployments}, deployed
    assert len([d for d in deployments if d.name in ("docker", "process")]) >= len(
        spec["deployments"]), deployed
    assert sorted(r.name for r in task_runs if r.name.startswith("summary@")) == sorted(
        f"summary@{node.organization_name}" for node in federation.nodes)
    assert all(r.state is not None and r.state.is_completed() for r in task_runs)
    assert len(artifacts) == 1 and artifacts[0].type == "table"
    rows = artifact_rows(artifacts[0].data)
    expected = pandas_summary(pooled_frame(federation.csv_paths))
    assert_rows_match(rows, expected_rows(expected))
    assert any(f"summary of {expected['rows']} rows from {len(federation.nodes)} organizations"
               in log.message for log in logs)
