"""deployments/prefect.yaml on a Docker work pool: the flow runs in its own image.

Real local Prefect server, real ``prefect deploy`` and ``prefect worker start --type docker``
(prefect-docker), the real federation (v6flow server + 3 nodes). The summary deployment runs
in a container of the summary flow image built offline (``v6flow image build``; a private
tag of this session), never pulled (``image_pull_policy: Never``). The container shares the
host's network (``network_mode: host``): the Prefect API and the v6flow server listen on
127.0.0.1. Task runs, the result artifact and the flow-run container itself are checked.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import docker
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
DEPLOYMENT = "summary-statistics/docker"
RUN_TIMEOUT = 300.0


def _docker_summary(spec: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in spec["deployments"]
                if d["name"] == "docker"
                and d["entrypoint"].startswith("flows/v6flow_flows/summary/"))


@pytest.mark.slow
@pytest.mark.docker
async def test_summary_deployment_runs_in_its_image_on_a_docker_worker(
        prefect_server: PrefectServer, federation: Any, own_summary_image: str,
        researcher: Researcher, tmp_path: Path) -> None:
    """deploy --all → Docker worker → a container of the flow image (host network, no
    pull) → Completed; one summary@org task run per node; the table equals pandas."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.deployments import run_deployment

    # Prepare
    spec = yaml.safe_load(PREFECT_FILE.read_text(encoding="utf-8"))
    pools = {d["work_pool"]["name"]: "docker" if d["name"] == "docker" else "process"
             for d in spec["deployments"]}
    pool = _docker_summary(spec)["work_pool"]["name"]
    for name, kind in sorted(pools.items()):
        prefect(prefect_server, "work-pool", "create", name, "--overwrite", "--type", kind)
    prefect(prefect_server, "--no-prompt", "deploy", "--all",
            "--prefect-file", str(PREFECT_FILE.relative_to(REPO_ROOT)))
    block_name = f"researcher-{uuid.uuid4().hex[:8]}"
    with prefect_api(prefect_server):
        await V6flowServerCredentials(url=researcher.url, username=researcher.username,
                                      password=researcher.password).asave(block_name)  # type: ignore[arg-type]
    parameters = {"federation": {"collaboration_id": federation.collaboration_id,
                                 "credentials_block": block_name, "image": own_summary_image,
                                 "retries": 0, "timeout_seconds": 120},
                  "quantiles": []}
    # the session's private tag of the image; kept after the run to inspect it
    job_variables = {"image": own_summary_image, "auto_remove": False}
    engine = docker.from_env()
    # Execute
    with process_worker(prefect_server, pool, tmp_path / "worker.log",
                        worker_type="docker") as worker_log, prefect_api(prefect_server):
        started = time.monotonic()
        flow_run = await run_deployment(  # type: ignore[misc]  # sync/async dispatch union
            DEPLOYMENT, parameters=parameters, job_variables=job_variables,
            timeout=RUN_TIMEOUT, poll_interval=1)
        seconds = time.monotonic() - started
        print(f"docker deployment: trigger → final state {seconds:.1f} s")  # pytest -s
        async with get_client() as api:
            deployment = await api.read_deployment_by_name(DEPLOYMENT)
            task_runs = await recorded_task_runs(api, flow_run.id,
                                                 expected=len(federation.nodes))
            artifacts = await api.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["summary-statistics"])),
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    containers = engine.containers.list(
        all=True, filters={"label": f"io.prefect.flow-run-id={flow_run.id}"})
    attrs = [c.attrs for c in containers]
    for container in containers:
        container.remove(force=True)
    worker_text = worker_log.read_text(errors="replace")
    # Assert
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), f"{flow_run.state}\n--- worker ---\n{worker_text[-4000:]}"
    assert deployment.work_pool_name == pool
    assert deployment.job_variables["image_pull_policy"] == "Never"
    assert deployment.job_variables["network_mode"] == "host"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 6 * * 1"]  # type: ignore[union-attr]
    assert len(attrs) == 1, worker_text[-4000:]
    assert attrs[0]["Config"]["Image"] == own_summary_image
    assert attrs[0]["HostConfig"]["NetworkMode"] == "host"
    assert attrs[0]["State"]["ExitCode"] == 0
    assert "Pulling image" not in worker_text
    assert sorted(r.name for r in task_runs if r.name.startswith("summary@")) == sorted(
        f"summary@{node.organization_name}" for node in federation.nodes)
    assert all(r.state is not None and r.state.is_completed() for r in task_runs)
    assert len(artifacts) == 1
    expected = pandas_summary(pooled_frame(federation.csv_paths))
    assert_rows_match(artifact_rows(artifacts[0].data), expected_rows(expected))
