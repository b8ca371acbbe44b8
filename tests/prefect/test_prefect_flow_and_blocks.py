"""The summary flow's parameter checks, the Blocks and the deployment file, under Prefect."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.exceptions import ParameterTypeError
from prefect.flows import load_flow_from_entrypoint
from prefect.logging.handlers import APILogHandler

from prefect_v6flow import V6flowCollaboration, V6flowServerCredentials
from tests.flows.pooled import assert_matches_pandas, pandas_summary, pooled_frame
from tests.flows.researcher import Researcher
from tests.prefect_records import recorded_task_runs
from v6flow.client import AsyncClient, Client
from v6flow_flows.parameters import Federation
from v6flow_flows.summary.flow import summary_statistics

ROOT = Path(__file__).resolve().parents[2]


async def test_invalid_parameter_fails_before_any_task(server: Any) -> None:
    """A bad federation.collaboration_id is refused by parameter validation, naming it."""
    # Prepare
    federation = {"collaboration_id": 0, "server": {
        "url": server.url, "username": "root", "password": server.root_password}}
    with Client(server.url, username="root", password=server.root_password) as root:
        before = len(root.task.list())
        # Execute
        with pytest.raises(ParameterTypeError) as caught:
            await summary_statistics(federation=federation)  # type: ignore[call-overload]
        after = len(root.task.list())
    # Assert
    assert "collaboration_id" in str(caught.value)
    assert after == before


async def test_credentials_block_saves_loads_and_makes_clients(server: Any) -> None:
    """The saved Block keeps the password secret and its clients log in."""
    # Prepare
    name = f"creds-{uuid.uuid4().hex[:8]}"
    await V6flowServerCredentials(url=server.url, username="root",
                                  password=server.root_password).asave(name)  # type: ignore[arg-type]
    # Execute
    loaded = await V6flowServerCredentials.aload(name)
    with loaded.get_client() as client:
        me = client.whoami()
    async with loaded.get_async_client() as aclient:
        assert isinstance(aclient, AsyncClient)
        ame = await aclient.whoami()
    # Assert
    assert "**" in repr(loaded.password)
    assert me.username == ame.username == "root"


async def test_collaboration_block_defaults() -> None:
    """Empty default organizations mean every member organization."""
    # Execute
    block = V6flowCollaboration(collaboration_id=3)
    await block.asave(f"collab-{uuid.uuid4().hex[:8]}")
    # Assert
    assert block.organization_ids() is None
    assert block.databases == [{"label": "default"}]


def test_deployment_file_points_at_the_flows_with_valid_parameters() -> None:
    """Every entrypoint of deployments/prefect.yaml loads a flow, its parameters pass that
    flow's validation, and every flow has a Docker and a process deployment."""
    # Prepare
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    # Execute
    flows = [(d, load_flow_from_entrypoint(str(ROOT / d["entrypoint"])))
             for d in spec["deployments"]]
    # Assert
    for deployment, flow in flows:
        flow.validate_parameters(deployment["parameters"])  # raises naming a bad one
        assert set(deployment["parameters"]["federation"]) <= set(Federation.model_fields)
    kinds: dict[str, set[str]] = {}
    for deployment, flow in flows:
        kinds.setdefault(flow.name, set()).add(deployment["name"])
    flow_names = ("summary-statistics", "crosstab", "logistic-regression", "kaplan-meier")
    assert kinds == {name: {"docker", "process"} for name in flow_names}
    assert summary_statistics.name in kinds


@pytest.mark.docker
async def test_summary_flow_under_the_engine_with_a_saved_collaboration_block(
        federation: Any, summary_image: str, researcher: Researcher) -> None:
    """The deployed shape: collaboration and credentials from one saved Block, one
    summary@org and one histogram@org run per node."""
    # Prepare
    credentials = V6flowServerCredentials(url=researcher.url, username=researcher.username,
                                          password=researcher.password)  # type: ignore[arg-type]
    await credentials.asave(f"fed-{uuid.uuid4().hex[:8]}")
    block_name = f"collab-{uuid.uuid4().hex[:8]}"
    await V6flowCollaboration(collaboration_id=federation.collaboration_id,
                              credentials=credentials).asave(block_name)
    # Execute
    state = await summary_statistics(
        federation=Federation(collaboration_block=block_name, image=summary_image),
        return_state=True)
    table = await state.result()
    async with get_client() as client:
        runs = await recorded_task_runs(client, state.state_details.flow_run_id,
                                        expected=2 * len(federation.nodes))
    # Assert
    assert_matches_pandas(table, pandas_summary(pooled_frame(federation.csv_paths)))
    # two federated rounds: moments (summary@org), then histograms for quantiles (histogram@org)
    assert sorted(r.name for r in runs) == sorted(
        f"{method}@{n.organization_name}" for n in federation.nodes
        for method in ("summary", "histogram"))


def test_refused_requests_are_not_retried() -> None:
    """retry_condition_fn: failed runs and timeouts retry; refused requests and non-JSON
    results (deterministic) do not."""
    # Prepare
    from prefect.states import Failed

    from v6flow.errors import BadRequest, PermissionDenied, ResultNotJSON, RunFailed
    from v6flow.prefect.tasks import worth_retrying

    # Execute / Assert
    assert worth_retrying(None, None, Failed(data=RunFailed(run_id=1, organization_id=2,
                                                            status="crashed")))
    assert worth_retrying(None, None, Failed(data=TimeoutError("slow")))
    assert not worth_retrying(None, None, Failed(data=BadRequest("no node")))
    assert not worth_retrying(None, None, Failed(data=PermissionDenied("no")))
    assert not worth_retrying(None, None, Failed(data=ResultNotJSON(
        run_id=1, organization_id=2, status="failed")))


@pytest.mark.docker
async def test_an_ad_hoc_login_never_shows_its_password(
        federation: Any, summary_image: str, researcher: Researcher) -> None:
    """The flow run's recorded parameters and its logs (flow and task runs, node lines)
    never contain the password given in ``federation.server``."""
    # Execute
    state = await summary_statistics(
        federation=researcher.federation(federation.collaboration_id, summary_image),
        columns=["age"], quantiles=[], return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    await APILogHandler.aflush()
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[flow_run_id])))
    # Assert
    assert state.is_completed(), state
    assert flow_run.parameters["federation"]["server"]["username"] == researcher.username
    assert researcher.password not in json.dumps(flow_run.parameters, default=str)
    assert any("summary of" in log.message for log in logs)  # the run's logs are there
    assert [log.message for log in logs if researcher.password in log.message] == []
