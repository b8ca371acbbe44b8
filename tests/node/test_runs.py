"""Runs end to end on real nodes: results, crashes, policy refusals, missing images."""

from __future__ import annotations

import uuid
from typing import Any

import docker
import pandas as pd
import pytest

from tests.fixtures.federation import Federation
from v6flow.wire import result_from_wire


def _results_by_org(federation: Federation, task_id: int) -> dict[int, Any]:
    runs = federation.runs(task_id)
    org_of_run = {r["id"]: r["organization"]["id"] for r in runs}
    return {org_of_run[item["run"]["id"]]: result_from_wire(item["result"])
            for item in federation.results(task_id)}


def test_column_stats_on_three_organizations(federation: Federation) -> None:
    """column_stats completes at every node and equals pandas on each organization's CSV."""
    # Prepare
    column = "bmi"
    # Execute
    task = federation.create_task("column_stats", kwargs={"column": column})
    runs = federation.wait_for_runs(task["id"])
    # Assert
    assert [r["status"] for r in runs] == ["completed"] * 3, [r["log"] for r in runs]
    results = _results_by_org(federation, task["id"])
    for node in federation.nodes:
        values = pd.read_csv(node.csv_path)[column].dropna()
        expected = {"count": int(values.count()), "sum": float(values.sum()),
                    "sum_sq": float((values**2).sum())}
        assert results[node.organization_id] == pytest.approx(expected)


def test_boom_crashes_with_traceback_in_log(federation: Federation) -> None:
    """A raising algorithm ends `crashed`, and run.log carries the traceback and exit code."""
    # Prepare
    message = f"kaboom-{uuid.uuid4().hex[:8]}"
    # Execute
    task = federation.create_task("boom", args=[message],
                                  organization_ids=federation.organization_ids[:1])
    (run,) = federation.wait_for_runs(task["id"])
    # Assert
    assert run["status"] == "crashed"
    assert "Traceback" in run["log"]
    assert f"ValueError: {message}" in run["log"]
    assert "exited with code 1" in run["log"]


def test_non_json_result_crashes_and_says_why(federation: Federation) -> None:
    """A return value JSON cannot encode ends `crashed` with the reason in the log."""
    task = federation.create_task("non_json", organization_ids=federation.organization_ids[1:2])
    (run,) = federation.wait_for_runs(task["id"])
    assert run["status"] == "crashed"
    assert "JSON" in run["log"]


@pytest.fixture
def forbidden_image(test_algorithm_image: str) -> Any:
    """The basic test image tagged outside the node allow-list (removed afterwards)."""
    client = docker.from_env()
    tag = f"other/forbidden:{uuid.uuid4().hex[:8]}"
    repository, _, version = tag.partition(":")
    client.images.get(test_algorithm_image).tag(repository, version)
    yield tag
    client.images.remove(tag)


def test_image_outside_allow_list_is_not_allowed(federation: Federation,
                                                 forbidden_image: str) -> None:
    """An image the policy does not allow ends `not allowed`, the reason in the log."""
    # Execute
    task = federation.create_task("echo", args=[1], image=forbidden_image,
                                  organization_ids=federation.organization_ids[:1])
    (run,) = federation.wait_for_runs(task["id"])
    # Assert
    assert run["status"] == "not allowed"
    assert forbidden_image in run["log"]
    assert "allowed_algorithms" in run["log"]
    assert federation.results(task["id"])[0]["result"] in ("", None)


def test_missing_image_is_reported(federation: Federation) -> None:
    """An allowed image that exists nowhere ends `non-existing Docker image`, saying why."""
    # Prepare
    image = f"v6flow-test/does-not-exist-{uuid.uuid4().hex[:8]}:latest"
    # Execute
    task = federation.create_task("echo", args=[1], image=image,
                                  organization_ids=federation.organization_ids[:1])
    (run,) = federation.wait_for_runs(task["id"])
    # Assert
    assert run["status"] == "non-existing Docker image"
    assert image in run["log"]
    assert "pull" in run["log"] and "no local image" in run["log"]


@pytest.fixture
def unstartable_image(test_algorithm_image: str) -> Any:
    """An allowed image whose CMD does not exist (so Docker cannot start it)."""
    client = docker.from_env()
    container = client.containers.create(test_algorithm_image, network_mode="none")
    repository, tag = "v6flow-test/unstartable", uuid.uuid4().hex[:8]
    container.commit(repository, tag, changes='CMD ["/no/such/binary"]')
    container.remove()
    yield f"{repository}:{tag}"
    client.images.remove(f"{repository}:{tag}")


def test_start_failure_says_what_failed(federation: Federation, unstartable_image: str) -> None:
    """A container Docker cannot start ends `start failed` with Docker's explanation."""
    task = federation.create_task("echo", args=[1], image=unstartable_image,
                                  organization_ids=federation.organization_ids[2:])
    (run,) = federation.wait_for_runs(task["id"])
    assert run["status"] == "start failed"
    assert unstartable_image in run["log"]
    assert "/no/such/binary" in run["log"]
