"""The Docker runtime against the real engine: pull policy, sidecar failures, cleanup."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.fixtures.federation import labelled_leftovers
from v6flow_node.errors import ContainerStartError, ImageUnavailable
from v6flow_node.runtime.docker import DockerRuntime


@pytest.fixture
def runtime(tmp_path: Path, base_image: str) -> DockerRuntime:
    """A runtime for a throw-away node name."""
    (tmp_path / "proxy").mkdir()
    return DockerRuntime(node=f"rt-{uuid.uuid4().hex[:6]}", proxy_dir=tmp_path / "proxy",
                         sidecar_image=base_image)


async def test_require_pull_refuses_local_only_image(runtime: DockerRuntime,
                                                     test_algorithm_image: str) -> None:
    """With require_algorithm_pull a local image is not enough (no registry here)."""
    with pytest.raises(ImageUnavailable, match="require_algorithm_pull is true"):
        await runtime.ensure_image(test_algorithm_image, require_pull=True, timeout=20)


async def test_local_image_is_used_without_pull(runtime: DockerRuntime,
                                                test_algorithm_image: str) -> None:
    """Without require_algorithm_pull the local image is used as is."""
    source = await runtime.ensure_image(test_algorithm_image, require_pull=False, timeout=20)
    assert source == "local"


async def test_sidecar_with_missing_image_fails_clearly(tmp_path: Path) -> None:
    """A sidecar image that does not exist gives a ContainerStartError naming it."""
    runtime = DockerRuntime(node=f"rt-{uuid.uuid4().hex[:6]}", proxy_dir=tmp_path,
                            sidecar_image="v6flow-test/no-such-sidecar:0")
    with pytest.raises(ContainerStartError, match="no-such-sidecar"):
        await runtime.acquire_sidecar(1, 1)
    assert labelled_leftovers([runtime.node]) == []


async def test_last_release_removes_sidecar_and_scratch(runtime: DockerRuntime) -> None:
    """The sidecar lives while a run of its job uses it; the last release removes it and the
    job's TEMPORARY_FOLDER."""
    # Prepare
    first = await runtime.acquire_sidecar(7, 1)
    second = await runtime.acquire_sidecar(7, 2)
    runtime.job_scratch(7).mkdir(parents=True)
    (runtime.job_scratch(7) / "left-by-a-run").write_text("x")
    # Execute / Assert
    assert first.id == second.id
    await runtime.release_sidecar(7, 1)
    assert [c.id for c in runtime.client.containers.list(
        filters={"label": f"v6flow.node={runtime.node}"})] == [first.id]
    assert runtime.job_scratch(7).is_dir()
    await runtime.release_sidecar(7, 2)
    assert labelled_leftovers([runtime.node]) == []
    assert not runtime.job_scratch(7).exists()


async def test_sidecar_is_hardened(runtime: DockerRuntime) -> None:
    """The sidecar runs unprivileged: no capabilities, no_new_privs, read-only root, limits."""
    # Prepare
    sidecar = await runtime.acquire_sidecar(8, 1)
    try:
        # Execute
        sidecar.reload()
        host = sidecar.attrs["HostConfig"]
        output = sidecar.exec_run(["cat", "/proc/1/status"]).output
        assert isinstance(output, bytes)
        status = output.decode()
        touch = sidecar.exec_run(["touch", "/probe"])
    finally:
        await runtime.release_sidecar(8, 1)
    # Assert
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    assert fields["Uid"].split()[0] == str(uid) != "0"
    assert fields["CapEff"].strip() == fields["CapBnd"].strip() == "0" * 16
    assert fields["NoNewPrivs"].strip() == "1"
    assert touch.exit_code != 0 and b"Read-only file system" in touch.output
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert host["Memory"] > 0 and host["PidsLimit"] > 0 and host["NanoCpus"] > 0


async def test_a_job_takes_the_spare_sidecar_and_a_new_one_follows(tmp_path: Path,
                                                                    base_image: str) -> None:
    """With a spare started ahead, a job's sidecar is that spare under the job's name; after
    the job's release a new spare (another container) is started, and shutdown removes it."""
    # Prepare
    (tmp_path / "proxy").mkdir()
    runtime = DockerRuntime(node=f"rt-{uuid.uuid4().hex[:6]}", proxy_dir=tmp_path / "proxy",
                            sidecar_image=base_image, spare_sidecars=1)
    runtime.fill_spares()
    (spare,) = await runtime.spares_ready()
    try:
        # Execute
        sidecar = await runtime.acquire_sidecar(9, 1)
        # Assert
        sidecar.reload()
        assert sidecar.id == spare.id
        assert sidecar.name == f"v6flow-{runtime.node}-sidecar-job-9"
        assert sidecar.status == "running"
        await runtime.release_sidecar(9, 1)
        (following,) = await runtime.spares_ready()
        assert following.id != spare.id
    finally:
        await runtime.stop_spares()
        runtime.remove_everything()
    assert labelled_leftovers([runtime.node]) == []
