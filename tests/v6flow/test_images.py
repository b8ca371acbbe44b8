"""Offline images: the base image, the basic test image and the v4-compat image, run for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pandas as pd
import pytest
from typer.testing import CliRunner

import v6flow
from v6flow import images
from v6flow._images import wheelhouse
from v6flow.cli import image_cmd
from v6flow.synthetic import write_patient_csv
from v6flow.wire import encode_env

pytestmark = pytest.mark.docker

TEST_LABELS = {"v6flow.test": "1"}


def _run(client: docker.DockerClient, image: str, run_dir: Path, env: dict[str, str]) -> str:
    """Run an algorithm container like a node would: encoded env, /mnt/data, no network."""
    return client.containers.run(
        image, environment=encode_env(env), network_mode="none", remove=True,
        volumes={str(run_dir): {"bind": "/mnt/data", "mode": "rw"}}, labels=TEST_LABELS,
        stdout=True, stderr=True,
    ).decode()


def _run_dir(tmp_path: Path, method: str, **kwargs: Any) -> tuple[Path, dict[str, str]]:
    run_dir = tmp_path / "task-000000001"
    run_dir.mkdir()
    (run_dir / "input").write_text(json.dumps({"method": method, "kwargs": kwargs}))
    (run_dir / "output").write_bytes(b"")
    (run_dir / "token").write_text("unused")
    env = {"INPUT_FILE": "/mnt/data/input", "OUTPUT_FILE": "/mnt/data/output",
           "TOKEN_FILE": "/mnt/data/token", "TEMPORARY_FOLDER": "/mnt/data",
           "HOST": "http://127.0.0.1", "PORT": "8080", "API_PATH": "",
           "USER_REQUESTED_DATABASE_LABELS": "default",
           "DEFAULT_DATABASE_URI": "/mnt/data/data.csv", "DEFAULT_DATABASE_TYPE": "csv"}
    return run_dir, env


def test_base_image_has_v6flow_and_data_stack(docker_client: docker.DockerClient,
                                              base_image: str) -> None:
    """The base image imports v6flow.algorithm, pandas and pyarrow from /opt/venv, offline."""
    assert base_image == images.BASE_IMAGE == f"v6flow/base:{v6flow.__version__}"
    out = docker_client.containers.run(
        base_image, ["python", "-c",
                     "import sys, v6flow, v6flow.algorithm, pandas, pyarrow, os; "
                     "print(sys.prefix, v6flow.__version__, os.environ['PYTHONUNBUFFERED'], "
                     "len(os.listdir('/opt/wheels')) > 0)"],
        network_mode="none", remove=True, labels=TEST_LABELS,
    ).decode().split()
    assert out == ["/opt/venv", v6flow.__version__, "1", "True"]


def test_base_image_is_labelled_with_the_source_hash(docker_client: docker.DockerClient,
                                                     base_image: str) -> None:
    """Labels say what the image is and which sources it was built from."""
    labels = docker_client.images.get(base_image).labels
    root = wheelhouse.source_root()
    assert labels[images.LABEL_IMAGE] == "base"
    assert labels[images.LABEL_SOURCE_HASH] == wheelhouse.source_hash(root)
    assert images.base_image_is_current(docker_client, base_image)


def test_ensure_base_image_reuses_a_current_image(docker_client: docker.DockerClient,
                                                  base_image: str) -> None:
    """A second ensure_base_image does not rebuild: same image id, no progress lines."""
    before = docker_client.images.get(base_image).id
    lines: list[str] = []
    assert images.ensure_base_image(client=docker_client, progress=lines.append) == base_image
    assert docker_client.images.get(base_image).id == before
    assert lines == []


def test_basic_image_wrapper_writes_the_output(docker_client: docker.DockerClient,
                                               test_algorithm_image: str,
                                               tmp_path: Path) -> None:
    """column_stats in the basic image, via a mounted input file: matches pandas."""
    run_dir, env = _run_dir(tmp_path, "column_stats", column="age")
    csv = write_patient_csv(run_dir / "data.csv", 64, seed=5)
    _run(docker_client, test_algorithm_image, run_dir, env)
    ages = pd.read_csv(csv)["age"].dropna()
    result = json.loads((run_dir / "output").read_bytes())
    assert result["count"] == len(ages)
    assert result["sum"] == pytest.approx(float(ages.sum()))
    assert result["sum_sq"] == pytest.approx(float((ages**2).sum()))


def test_basic_image_failure_exits_1(docker_client: docker.DockerClient,
                                     test_algorithm_image: str, tmp_path: Path) -> None:
    """boom() in a container: exit status 1 with the ValueError on stderr."""
    run_dir, env = _run_dir(tmp_path, "boom", message="container kaboom")
    with pytest.raises(docker.errors.ContainerError) as info:
        _run(docker_client, test_algorithm_image, run_dir, env)
    assert info.value.exit_status == 1
    assert "ValueError: container kaboom" in info.value.stderr.decode()


def test_basic_image_sees_only_loopback(docker_client: docker.DockerClient,
                                        test_algorithm_image: str, tmp_path: Path) -> None:
    """With network none, env_report lists only the lo interface."""
    run_dir, env = _run_dir(tmp_path, "env_report")
    _run(docker_client, test_algorithm_image, run_dir, env)
    assert json.loads((run_dir / "output").read_bytes())["interfaces"] == ["lo"]


def test_v6compat_image_runs_reference_wrapper(docker_client: docker.DockerClient,
                                               v6compat_image: str, tmp_path: Path) -> None:
    """The vantage6-algorithm-tools 4.15.2 wrapper and @data(1) run on our base image."""
    run_dir, env = _run_dir(tmp_path, "partial", column="bmi")
    csv = write_patient_csv(run_dir / "data.csv", 38, seed=8)
    logs = _run(docker_client, v6compat_image, run_dir, env)
    bmi = pd.read_csv(csv)["bmi"].dropna()
    assert json.loads((run_dir / "output").read_bytes()) == {
        "count": len(bmi), "sum": pytest.approx(float(bmi.sum()))}
    assert "wrapper for v6compat_algos" in logs  # the reference wrapper's own log line


def test_cli_build_reports_errors_without_traceback(tmp_path: Path) -> None:
    """`v6flow image build`: missing folder → exit 2, no Dockerfile → exit 1, clear text."""
    runner = CliRunner()
    missing = runner.invoke(image_cmd.app, ["build", str(tmp_path / "nope"), "-t", "x:1"])
    assert missing.exit_code == 2
    assert "is not a directory" in missing.output
    empty = runner.invoke(image_cmd.app, ["build", str(tmp_path), "-t", "x:1"])
    assert empty.exit_code == 1
    assert "has no Dockerfile" in empty.output
    assert "Traceback" not in missing.output + empty.output


def test_cli_build_builds_an_image(docker_client: docker.DockerClient, base_image: str,
                                   tmp_path: Path) -> None:
    """`v6flow image build PATH -t TAG` builds FROM the base image offline."""
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nLABEL v6flow.test=1\n"
        "RUN python -c \"import v6flow\"\n")
    tag = "v6flow-test/cli-build:latest"
    result = CliRunner().invoke(image_cmd.app, ["build", str(tmp_path), "-t", tag])
    assert result.exit_code == 0, result.output
    image = docker_client.images.get(tag)
    assert image.labels[images.LABEL_IMAGE] == "algorithm"
    docker_client.images.remove(tag, force=True)


def test_missing_debootstrap_says_how_to_install(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without debootstrap on PATH the error says `apt-get install debootstrap`."""
    from v6flow._images import rootfs
    from v6flow.errors import ImageBuildError

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImageBuildError, match="apt-get install debootstrap"):
        rootfs.ensure_rootfs(tmp_path / "cache")


def test_unreachable_engine_says_how_to_start_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST pointing nowhere: EngineUnavailable explaining how to start dockerd."""
    from v6flow.errors import EngineUnavailable

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(EngineUnavailable, match="dockerd"):
        images.docker_client()


def test_cli_build_base_reuses_the_cache(docker_client: docker.DockerClient,
                                         base_image: str) -> None:
    """`v6flow image build-base` on a current image: exit 0, cached rootfs and wheels."""
    result = CliRunner().invoke(image_cmd.app, ["build-base"])
    assert result.exit_code == 0, result.output
    assert "reusing dependency wheels" in result.output
    assert f"built {base_image}" in result.output
    assert images.base_image_is_current(docker_client, base_image)


def test_flow_base_carries_prefect_flows_and_a_migrated_home(
        docker_client: docker.DockerClient, base_image: str) -> None:
    """The flow base: Prefect and the flows importable offline, a migrated Prefect home,
    labelled with the hash of the flow sources; a second ensure does not rebuild."""
    tag = images.ensure_flow_base_image(client=docker_client)
    out = docker_client.containers.run(
        tag, ["python", "-c",
              "import prefect, v6flow_flows.summary.flow, prefect_v6flow, os; "
              "print(prefect.__version__, os.path.getsize('/opt/v6flow/prefect-home/prefect.db')"
              " > 0)"],
        network_mode="none", remove=True, labels=TEST_LABELS,
    ).decode().split()
    import prefect

    assert out == [prefect.__version__, "True"]
    assert docker_client.images.get(tag).labels[images.LABEL_IMAGE] == "flow-base"
    assert images.flow_base_is_current(docker_client, tag)
    lines: list[str] = []
    images.ensure_flow_base_image(client=docker_client, progress=lines.append)
    assert lines == []


def test_dockerfile_names_its_base(tmp_path: Path) -> None:
    """``ARG BASE_IMAGE=<default>`` picks the base; none means the plain base."""
    assert images.dockerfile_base(Path("flows/v6flow_flows/summary")) == images.FLOW_BASE_IMAGE
    assert images.dockerfile_base(Path("tests/algorithms/basic")) == images.BASE_IMAGE
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    assert images.dockerfile_base(tmp_path) is None


def test_flow_requirements_are_pinned_for_the_image_interpreter() -> None:
    """Prefect's whole closure pinned to the host's versions; markers for Python 3.11.2."""
    import prefect

    pinned = wheelhouse.flow_requirements(wheelhouse.source_root())
    assert f"prefect=={prefect.__version__}" in pinned
    assert all("==" in req or ">=" in req for req in pinned)
    # redis needs the backport below 3.11.3: the image's 3.11.2 gets it, unpinned if absent
    if any(req.startswith("redis==") for req in pinned):
        assert any(req.startswith("async-timeout") for req in pinned)
