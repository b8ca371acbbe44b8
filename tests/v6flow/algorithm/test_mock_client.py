"""MockAlgorithmClient: the real AlgorithmClient code over an in-memory federation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.v6flow.algorithm.conftest import BASIC_PACKAGE_DIR
from v6flow.algorithm import AlgorithmClient, MockAlgorithmClient
from v6flow.errors import NotFound, RunFailed
from v6flow.synthetic import write_federation_csvs

ORG_IDS = [4, 9, 2]


@pytest.fixture
def frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[pd.DataFrame]:
    """Three synthetic organizations' tables; the test algorithm package importable."""
    monkeypatch.syspath_prepend(str(BASIC_PACKAGE_DIR))
    return [pd.read_csv(p) for p in write_federation_csvs(tmp_path)]


@pytest.fixture
def client(frames: list[pd.DataFrame]) -> MockAlgorithmClient:
    """A mock client acting as the first of three organizations."""
    return MockAlgorithmClient([[{"database": f}] for f in frames], "v6flow_test_algos",
                               collaboration_id=3, organization_ids=ORG_IDS)


def test_mock_is_the_real_client(client: MockAlgorithmClient) -> None:
    """The mock is an AlgorithmClient (one implementation) acting as the first org."""
    assert isinstance(client, AlgorithmClient)
    assert (client.organization_id, client.collaboration_id) == (ORG_IDS[0], 3)


def test_organizations(client: MockAlgorithmClient) -> None:
    """organization.list gives every organization; get gives one; unknown is NotFound."""
    assert [o["id"] for o in client.organization.list()] == ORG_IDS
    assert client.organization.get(9)["id"] == 9
    with pytest.raises(NotFound):
        client.organization.get(12345)


def test_central_sum_matches_pandas(client: MockAlgorithmClient,
                                    frames: list[pd.DataFrame]) -> None:
    """central_sum fans column_stats out to all orgs; the sums match pandas on all rows."""
    import v6flow_test_algos

    # Execute
    out = v6flow_test_algos.central_sum("age", mock_client=client)
    # Assert
    ages = pd.concat(frames)["age"].dropna()
    assert out["count"] == len(ages)
    assert out["sum"] == pytest.approx(float(ages.sum()))
    assert out["organizations"] == ORG_IDS
    assert [p["count"] for p in out["parts"]] == [int(f["age"].count()) for f in frames]


def test_results_follow_the_organizations_order(client: MockAlgorithmClient,
                                                frames: list[pd.DataFrame]) -> None:
    """from_task returns results in the order of task.create's organizations."""
    order = [2, 4, 9]
    task = client.task.create({"method": "row_count"}, order)
    by_org = dict(zip(ORG_IDS, frames, strict=True))
    assert client.wait_for_results(task["id"]) == [len(by_org[o]) for o in order]
    assert [r["organization"]["id"] for r in client.run.from_task(task["id"])] == order


def test_failing_partial_raises_run_failed(client: MockAlgorithmClient) -> None:
    """A partial that raises marks its run crashed; wait_for_results raises RunFailed."""
    task = client.task.create({"method": "boom", "args": ["mock kaboom"]}, [9])
    assert client.task.get(task["id"])["status"] == "crashed"
    with pytest.raises(RunFailed) as info:
        client.wait_for_results(task["id"])
    assert info.value.status == "crashed"
    assert info.value.organization_id == 9
    assert "ValueError: mock kaboom" in info.value.log_tail


def test_nested_subtasks_share_the_job(client: MockAlgorithmClient,
                                       frames: list[pd.DataFrame]) -> None:
    """A central function run as a task creates grandchildren with the same job id."""
    task = client.task.create({"method": "central_sum", "kwargs": {"column": "sbp"}}, [4])
    [out] = client.wait_for_results(task["id"])
    assert out["sum"] == pytest.approx(float(pd.concat(frames)["sbp"].sum()))
    child = client.task.get(out["subtask_id"])
    assert child["parent"] == {"id": task["id"]}
    assert child["job_id"] == task["job_id"]
    assert child["init_org"] == {"id": 4}


def test_metadata_in_mock(client: MockAlgorithmClient) -> None:
    """@metadata works in the mock: ids of the organization that runs the partial."""
    task = client.task.create({"method": "whoami"}, [2])
    [meta] = client.wait_for_results(task["id"])
    assert (meta["organization_id"], meta["task_id"], meta["collaboration_id"]) == (
        2, task["id"], 3)
    assert Path(meta["temporary_directory"]).is_dir()


def test_task_create_needs_organizations(client: MockAlgorithmClient) -> None:
    """No organizations: the (mock) server answers 400, raised as BadRequest."""
    from v6flow.errors import BadRequest

    with pytest.raises(BadRequest, match="non-empty"):
        client.task.create({"method": "echo"}, [])


def test_pagination_over_many_runs(frames: list[pd.DataFrame],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """More than one page (10) of organizations and results is fetched completely."""
    orgs = list(range(100, 123))
    mock = MockAlgorithmClient([[{"database": frames[0]}]] * len(orgs), "v6flow_test_algos",
                               organization_ids=orgs)
    assert [o["id"] for o in mock.organization.list()] == orgs
    task = mock.task.create({"method": "echo", "args": ["x"]}, orgs)
    assert mock.wait_for_results(task["id"]) == ["x"] * len(orgs)
