"""An algorithm in R (flows/v6flow_flows/r_mean/r_partial) on real nodes, next to its Python twin.

The R image holds R from Debian and no Python: it reads the encoded environment, the input
file and its CSV, and writes the output file itself (docs/cross-language.md). Its results are
compared with pandas on the same CSVs; the flow pools R and Python partials.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from tests.fixtures.docker import TEST_LABEL, BuildImage
from tests.fixtures.federation import Federation
from tests.flows.fixtures import researcher  # noqa: F401 - the fixture
from tests.flows.pooled import pooled_frame
from tests.flows.researcher import Researcher
from v6flow._images.debian import build_debian_algorithm_image
from v6flow.errors import ImageError
from v6flow.wire import decode_env_value, encode_env_value, result_from_wire
from v6flow_flows.parameters import Federation as FlowFederation
from v6flow_flows.parameters import ServerParameters
from v6flow_flows.r_mean import METHOD, PYTHON_MEAN_IMAGE, R_MEAN_IMAGE
from v6flow_flows.r_mean.flow import federated_mean

ROOT = Path(__file__).resolve().parents[2]
R_CONTEXT = ROOT / "flows" / "v6flow_flows" / "r_mean" / "r_partial"
#: The R image (R, jsonlite and their Depends on a minbase Debian) must stay below this.
R_IMAGE_BUDGET_MB = 250


@pytest.fixture(scope="session")
def r_image(docker_client: docker.DockerClient) -> str:
    """v6flow/mean-r, built offline from its Debian recipe and Dockerfile."""
    try:
        return build_debian_algorithm_image(R_CONTEXT, R_MEAN_IMAGE, client=docker_client,
                                            labels={TEST_LABEL: "1"})
    except ImageError as exc:
        pytest.fail(f"cannot build {R_MEAN_IMAGE}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def python_mean_image(algorithm_image: BuildImage) -> str:
    """v6flow/mean-py, the Python twin, built offline from flows/v6flow_flows/r_mean."""
    return algorithm_image(ROOT / "flows" / "v6flow_flows" / "r_mean", PYTHON_MEAN_IMAGE)


def _results_by_org(federation: Federation, task_id: int) -> dict[int, Any]:
    org_of_run = {r["id"]: r["organization"]["id"] for r in federation.runs(task_id)}
    return {org_of_run[item["run"]["id"]]: result_from_wire(item["result"])
            for item in federation.results(task_id)}


def _run_r(client: docker.DockerClient, image: str, env: dict[str, str], *,
           command: list[str] | None = None, mounts: dict[str, dict[str, str]] | None = None
           ) -> tuple[int, str]:
    """Run the R image as the hardened node will: no network, read-only root, a writable
    /tmp, an unprivileged user. Returns the exit status and the output."""
    container = client.containers.run(
        image, command, environment=env, volumes=mounts or {}, network_mode="none",
        read_only=True, tmpfs={"/tmp": "rw,size=64m"}, user="65534:65534", detach=True)
    try:
        status = int(container.wait(timeout=120)["StatusCode"])
        return status, container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_r_partial_equals_pandas_at_every_node(federation: Federation, r_image: str) -> None:
    """Each node's R sum, count and missing count of a column equal pandas on its CSV."""
    # Prepare
    column = "bmi"
    # Execute
    task = federation.create_task(METHOD, image=r_image, kwargs={"column": column})
    runs = federation.wait_for_runs(task["id"], timeout=120)
    # Assert
    assert [r["status"] for r in runs] == ["completed"] * len(runs), [r["log"] for r in runs]
    results = _results_by_org(federation, task["id"])
    for node in federation.nodes:
        values = pd.read_csv(node.csv_path)[column]
        got = results[node.organization_id]
        assert got["language"] == "R"
        assert (got["count"], got["missing"]) == (int(values.count()), int(values.isna().sum()))
        assert math.isclose(got["sum"], float(values.sum()), rel_tol=1e-13)


@pytest.mark.docker
async def test_flow_pools_r_and_python_partials_to_the_pandas_mean(
        federation: Federation, r_image: str, python_mean_image: str,
        researcher: Researcher) -> None:  # noqa: F811
    """Two organizations run R, one runs Python; the pooled mean equals pandas on all rows."""
    # Prepare
    column = "age"
    in_r = federation.organization_ids[:2]
    server = ServerParameters(url=researcher.url, username=researcher.username,
                              password=researcher.password)  # type: ignore[arg-type]
    where = FlowFederation(collaboration_id=federation.collaboration_id, server=server,
                           retries=0, timeout_seconds=120)
    # Execute
    with disable_run_logger():
        result = await federated_mean.fn(column=column, r_organizations=in_r,
                                         federation=where, r_image=r_image,
                                         python_image=python_mean_image)
    # Assert
    pooled = pooled_frame(federation.csv_paths)[column]
    assert result["count"] == int(pooled.count())
    assert result["missing"] == int(pooled.isna().sum())
    assert math.isclose(result["mean"], float(pooled.mean()), rel_tol=1e-12)
    languages = {org: entry["language"] for org, entry in result["organizations"].items()}
    assert languages == {org: "R" if org in in_r else "Python"
                         for org in federation.organization_ids}
    assert result["suppressed"] == []


@pytest.mark.docker
def test_r_failure_is_a_crashed_run_with_the_reason_in_its_log(federation: Federation,
                                                                r_image: str) -> None:
    """A method error exits non-zero; the run is `crashed` and its log says why."""
    # Execute
    task = federation.create_task(METHOD, image=r_image, kwargs={"column": "no_such_column"},
                                  organization_ids=federation.organization_ids[:1])
    (run,) = federation.wait_for_runs(task["id"], timeout=120)
    # Assert
    assert run["status"] == "crashed"
    assert "error > sum_count failed: column 'no_such_column' is not in the data" in run["log"]


@contextlib.contextmanager
def _retagged(client: docker.DockerClient, image: str, tag: str) -> Iterator[str]:
    client.images.get(image).tag(tag)
    try:
        yield tag
    finally:
        client.images.remove(tag)


@pytest.mark.docker
def test_the_allow_list_applies_to_the_r_image(federation: Federation, r_image: str,
                                               docker_client: docker.DockerClient) -> None:
    """The same R image under a name outside the nodes' allow-list is `not allowed`."""
    # Prepare
    with _retagged(docker_client, r_image, "elsewhere/mean-r:0.1.0") as outside:
        # Execute
        task = federation.create_task(METHOD, image=outside, kwargs={"column": "age"},
                                      organization_ids=federation.organization_ids[:1])
        (run,) = federation.wait_for_runs(task["id"], timeout=120)
    # Assert
    assert run["status"] == "not allowed", run["log"]


STRINGS = ["", "a", "abc", "default", "/mnt/data/task-000000042/input", "héllo wörld ✓",
           "a=b==c", "!!", "DEFAULT", "MFRGG!!!", "ABCDEFGH", "1234567", "x" * 100,
           "line one\nline two", '{"json": [1, 2.5, null]}']


@pytest.mark.docker
def test_r_decodes_environment_values_exactly_like_python(
        docker_client: docker.DockerClient, r_image: str) -> None:
    """contract.R's decoder gives Python's decode_env_value for encoded and plain values."""
    # Prepare: every string encoded (as the node sends it) and as a plain value
    values = [encode_env_value(s) for s in STRINGS] + STRINGS
    env = {f"V{i}": value for i, value in enumerate(values)}
    script = ("source('/opt/algorithm/contract.R'); "
              f"out <- sapply(sprintf('V%d', 0:{len(values) - 1}), env); "
              "cat(toJSON(unname(out)), file = stdout())")
    # Execute
    status, output = _run_r(docker_client, r_image, env,
                            command=["Rscript", "--vanilla", "-e", script])
    # Assert
    assert status == 0, output
    assert json.loads(output) == [decode_env_value(v) for v in values]


@pytest.mark.docker
def test_r_image_runs_read_only_as_nobody_and_honours_min_cell_count(
        docker_client: docker.DockerClient, r_image: str, tmp_path: Path) -> None:
    """With a read-only root, a writable /tmp and user nobody, the R partial writes only its
    output; a node admin's V6FLOW_MIN_CELL_COUNT above the count suppresses sum and count."""
    # Prepare
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "input").write_text(json.dumps({"method": METHOD, "kwargs": {"column": "x"}}))
    (run_dir / "output").write_bytes(b"")
    run_dir.chmod(0o777)
    (run_dir / "output").chmod(0o666)
    (tmp_path / "data.csv").write_text("x,y\n1.5,a\n2,b\n,c\n", encoding="utf-8")
    env = {key: encode_env_value(value) for key, value in {
        "INPUT_FILE": "/mnt/data/run/input", "OUTPUT_FILE": "/mnt/data/run/output",
        "TEMPORARY_FOLDER": "/mnt/tmp", "USER_REQUESTED_DATABASE_LABELS": "default",
        "DEFAULT_DATABASE_URI": "/mnt/default/data.csv", "DEFAULT_DATABASE_TYPE": "csv",
        "V6FLOW_MIN_CELL_COUNT": "3"}.items()}
    mounts = {str(run_dir): {"bind": "/mnt/data/run", "mode": "rw"},
              str(tmp_path / "data.csv"): {"bind": "/mnt/default/data.csv", "mode": "ro"}}
    # Execute
    status, output = _run_r(docker_client, r_image, env, mounts=mounts)
    # Assert
    assert status == 0, output
    result = json.loads((run_dir / "output").read_text(encoding="utf-8"))
    assert result["sum"] is None and result["count"] is None and result["missing"] == 1
    assert "fewer than 3 values" in result["suppressed"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["input", "output"]


@pytest.mark.docker
def test_r_image_is_small_and_has_no_python(docker_client: docker.DockerClient,
                                            r_image: str) -> None:
    """The R image stays within its size budget and carries no Python interpreter."""
    # Execute
    size_mb = docker_client.images.get(r_image).attrs["Size"] / 1e6
    status, _ = _run_r(docker_client, r_image, {},
                       command=["sh", "-c", "command -v python3 || command -v python"])
    # Assert
    assert size_mb < R_IMAGE_BUDGET_MB, f"{r_image} is {size_mb:.0f} MB"
    assert status != 0
