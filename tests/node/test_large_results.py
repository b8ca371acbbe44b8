"""Large inputs and results through the blob store, with real nodes, containers and proxy.

One server with a local blob store (threshold 1 MiB) and two nodes. A result above the
threshold is streamed node → server → client; an algorithm container's large subtask input
and its subtasks' large results go through the node proxy. Memory is measured on the real
processes: each one's peak resident size (``VmHWM``, reset first through ``clear_refs``)
against its own resident size at the start of the transfer.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import ServerProcess, start_server
from v6flow.client import Client
from v6flow.status import RunStatus

BULKY_DIR = Path(__file__).resolve().parent / "algorithms" / "bulky"
BULKY_IMAGE = "v6flow-test/node-bulky:latest"
THRESHOLD = 1024 * 1024
MIB = 1024 * 1024


def text(size: int, seed: str = "v6flow") -> str:
    """The text the bulky algorithm makes, computed here independently."""
    block = hashlib.sha512(seed.encode()).hexdigest() * 128
    return (block * (size // len(block) + 1))[:size]


def sha256(value: str) -> str:
    """Hex SHA-256 of the UTF-8 text."""
    return hashlib.sha256(value.encode()).hexdigest()


def status_kib(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of ``/proc/<pid>/status``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def reset_peak(pid: int) -> int:
    """Reset the process's peak RSS to its current RSS (``clear_refs`` 5); that RSS in bytes."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kib(pid, "VmRSS") * 1024


def peak(pid: int) -> int:
    """The process's peak RSS since the last reset, in bytes."""
    return status_kib(pid, "VmHWM") * 1024


@pytest.fixture(scope="module")
def bulky_image(algorithm_image: Callable[..., str]) -> str:
    """``v6flow-test/node-bulky:latest``: large texts, and a relay through subtasks."""
    return algorithm_image(BULKY_DIR, BULKY_IMAGE)


@pytest.fixture(scope="module")
def blob_federation(tmp_path_factory: pytest.TempPathFactory, base_image: str,
                    bulky_image: str) -> Iterator[Federation]:
    """A server with a local blob store and two running nodes."""
    directory = tmp_path_factory.mktemp("blob-federation")
    server: ServerProcess = start_server(
        database_url=f"sqlite:///{directory}/server.sqlite",
        root_password=secrets.token_urlsafe(12), log_dir=directory, extra_env={
            "V6FLOW_SERVER_BLOBS__BACKEND": "local",
            "V6FLOW_SERVER_BLOBS__PATH": str(directory / "blobs"),
            "V6FLOW_SERVER_BLOBS__THRESHOLD_BYTES": str(THRESHOLD)})
    fed = create_federation(server_url=server.url, root_password=server.root_password,
                            directory=directory, base_image=base_image, test_image=bulky_image,
                            sizes=(20, 20))
    fed.extra["server"] = server
    yield fed
    try:
        shutdown_federation(fed)
    finally:
        server.stop()


def client_of(fed: Federation) -> Client:
    """A v6flow client of the federation's researcher."""
    return Client(fed.server_url, username=fed.username, password=fed.password, timeout=120)


@pytest.mark.slow
def test_a_200_mb_result_streams_in_bounded_memory(blob_federation: Federation) -> None:
    """200 MB node → server → client by stream: server and node each grow < 150 MB."""
    # Prepare
    fed = blob_federation
    server: ServerProcess = fed.extra["server"]
    node = fed.nodes[0]
    size = 200 * MIB
    pids = {"server": server.process.pid, "node": node.proc.pid if node.proc else 0}
    # Execute
    with client_of(fed) as client:
        baseline = {name: reset_peak(pid) for name, pid in pids.items()}
        task = client.task.create(fed.collaboration_id, [node.organization_id], BULKY_IMAGE,
                                  "sized", kwargs={"size": size})
        status = client.wait_for_task(task.id, timeout=300)
        value = client.result.from_task(task.id)[node.organization_id]
        growth = {name: peak(pid) - baseline[name] for name, pid in pids.items()}
    (item,) = fed.results(task.id)
    # Assert
    assert status is RunStatus.COMPLETED
    assert item["blob_storage_used"] is True
    assert len(value) == size and sha256(value) == sha256(text(size))
    assert growth["server"] < 150 * MIB, growth
    assert growth["node"] < 150 * MIB, growth


def test_a_small_result_stays_inline(blob_federation: Federation) -> None:
    """Under the threshold, the result travels inline as before (no blob)."""
    fed = blob_federation
    org = fed.nodes[1].organization_id
    with client_of(fed) as client:
        task = client.task.create(fed.collaboration_id, [org], BULKY_IMAGE, "sized",
                                  kwargs={"size": 1000})
        client.wait_for_task(task.id, timeout=120)
        value = client.result.from_task(task.id)[org]
    (item,) = fed.results(task.id)
    assert item["blob_storage_used"] is False and value == text(1000)


def test_a_container_streams_large_inputs_and_results_through_the_proxy(
        blob_federation: Federation) -> None:
    """A central function's 3 MB subtask input and its subtasks' 3 MB results are blobs,
    uploaded and fetched through the node proxy, and arrive intact."""
    # Prepare
    fed = blob_federation
    orgs = fed.organization_ids
    size = 3 * MIB
    # Execute
    with client_of(fed) as client:
        task = client.task.create(fed.collaboration_id, orgs[:1], BULKY_IMAGE, "relay",
                                  kwargs={"size": size, "organizations": orgs})
        status = client.wait_for_task(task.id, timeout=300)
        out = client.result.from_task(task.id)[orgs[0]]
    sub_runs = fed.runs(out["subtask_id"])
    sub_results = fed.results(out["subtask_id"])
    # Assert
    assert status is RunStatus.COMPLETED, [r["log"] for r in fed.runs(task.id)]
    expected_in = {"length": size, "sha256": sha256(text(size, "input"))}
    assert out["inputs"] == [expected_in] * len(orgs)
    assert out["outputs"] == [expected_in] * len(orgs)
    assert all(run["blob_storage_used"] for run in sub_runs)
    assert all(item["blob_storage_used"] for item in sub_results)
