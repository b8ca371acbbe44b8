"""Peer-to-peer between algorithm containers of one job, on real nodes (docs/p2p.md).

The image ``v6flow-test/p2p`` EXPOSEs 8888 (``exchange``) and 9999 (``bench``); its functions
use v6flow's own ``client.vpn``. Every exchange crosses two node processes and the server.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import docker
import pytest

from tests.fixtures.docker import ALGORITHMS_DIR, BuildImage
from tests.fixtures.federation import Federation
from v6flow.wire import result_from_wire
from v6flow_node.relay import LOCAL_PORTS, websocket_base
from v6flow_node.runtime.docker import DockerRuntime, ExposedPort, exposed_ports

P2P_IMAGE = "v6flow-test/p2p:latest"


@pytest.fixture(scope="session")
def p2p_image(algorithm_image: BuildImage) -> str:
    """``v6flow-test/p2p:latest`` from tests/algorithms/p2p."""
    return algorithm_image(ALGORITHMS_DIR / "p2p", P2P_IMAGE)


def _results(fed: Federation, task: dict[str, Any], timeout: float = 120) -> dict[int, Any]:
    """Each organization's decoded result (asserting every run completed)."""
    runs = fed.wait_for_runs(task["id"], timeout=timeout)
    for run in runs:
        assert run["status"] == "completed", run["log"]
    by_run = {r["run"]["id"]: result_from_wire(r["result"]) for r in fed.results(task["id"])}
    return {run["organization"]["id"]: by_run[run["id"]] for run in runs}


def _wait_active(fed: Federation, task_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (run,) = fed.runs(task_id)
        if run["status"] == "active" and run["ports"]:
            return run
        assert run["status"] in ("pending", "initializing", "active"), run
        time.sleep(0.1)
    raise AssertionError(f"run of task {task_id} never active with ports: {fed.runs(task_id)}")


def test_exposed_ports_come_from_expose_and_label(p2p_image: str, tmp_path: Any) -> None:
    """The node reads EXPOSE and LABEL p<port> of the image; UDP ports are left out."""
    runtime = DockerRuntime(node="ports-probe", proxy_dir=tmp_path / "proxy",
                            sidecar_image=p2p_image)
    assert runtime.exposed_ports(p2p_image) == [ExposedPort(8888, "exchange"),
                                                ExposedPort(9999, "bench")]
    assert exposed_ports({"Config": {"ExposedPorts": {"53/udp": {}, "80/tcp": {}},
                                     "Labels": None}}) == [ExposedPort(80, None)]
    assert websocket_base("https://h:1/api") == "wss://h:1/api"


def test_ports_are_registered_while_the_run_runs(federation: Federation,
                                                 p2p_image: str) -> None:
    """The run shows its image's ports while active; they are gone once it finished, with
    its own sidecar and p2p folder; the container still has no interface but ``lo``."""
    task = federation.create_task("hold", image=p2p_image, kwargs={"seconds": 4},
                                  organization_ids=federation.organization_ids[:1],
                                  databases=[])
    active = _wait_active(federation, task["id"])
    listed = federation.get("port", run_id=active["id"])["data"]
    (result,) = _results(federation, task).values()
    node = federation.nodes[0]
    folder = federation.directory / "tasks" / node.name / "p2p" / str(active["id"])
    selector = {"label": [f"v6flow.node={node.name}", f"v6flow.run_id={active['id']}"]}

    def left() -> tuple[Any, bool, list[Any]]:
        return (federation.get(f"run/{active['id']}")["ports"], folder.exists(),
                docker.from_env().containers.list(all=True, filters=selector))

    deadline = time.monotonic() + 20  # the node cleans up right after its last report
    while time.monotonic() < deadline and any(left()):
        time.sleep(0.2)
    assert [(p["port"], p["label"]) for p in active["ports"]] == [(8888, "exchange"),
                                                                  (9999, "bench")]
    assert [p["port"] for p in listed] == [8888, 9999]
    assert sorted((a["ip"], a["port"]) for a in result["own"]) == [("127.0.0.1", 8888),
                                                                    ("127.0.0.1", 9999)]
    assert result["interfaces"] == ["lo"]
    assert left() == ([], False, [])


def test_siblings_on_two_nodes_exchange_bytes(federation: Federation, p2p_image: str) -> None:
    """One sibling sends 3 MB to the other's exposed port, through both nodes and the
    server; the listener's digest is the digest of the bytes the test computes itself."""
    # Prepare
    size, seed = 3_000_000, "two-nodes"
    first, second = federation.organization_ids[:2]
    # Execute
    task = federation.create_task("exchange", image=p2p_image,
                                  kwargs={"size": size, "seed": seed},
                                  organization_ids=[first, second], databases=[])
    results = _results(federation, task)
    # Assert
    expected = hashlib.sha256(hashlib.shake_256(seed.encode()).digest(size)).hexdigest()
    listener, sender = sorted(results.values(), key=lambda r: r["role"])
    assert (listener["role"], sender["role"]) == ("listener", "sender")
    assert listener["sha256"] == sender["reply"] == expected
    assert listener["received"] == size
    assert sender["peer"]["ip"] == "127.0.0.1" and sender["peer"]["port"] in LOCAL_PORTS
    assert [(a["ip"], a["port"]) for a in listener["own"]] == [("127.0.0.1", 8888),
                                                               ("127.0.0.1", 9999)]


def test_many_connections_at_once(federation: Federation, p2p_image: str) -> None:
    """40 connections at the same time each get their own 300 kB echoed back intact."""
    task = federation.create_task("concurrent", image=p2p_image,
                                  kwargs={"connections": 40, "size": 300_000},
                                  organization_ids=federation.organization_ids[1:3],
                                  databases=[])
    results = _results(federation, task, timeout=180)
    (checker,) = [r for r in results.values() if r["role"] == "checker"]
    assert checker == {"role": "checker", "ok": 40, "connections": 40}


def test_a_port_nobody_listens_on_resets_the_connection(federation: Federation,
                                                       p2p_image: str) -> None:
    """Dialling a registered port on which the peer does not listen: connection reset."""
    task = federation.create_task("dial_missing", image=p2p_image,
                                  organization_ids=federation.organization_ids[:2],
                                  databases=[])
    results = _results(federation, task)
    (dialler,) = [r for r in results.values() if r["role"] == "dialler"]
    assert dialler["outcome"] == "ConnectionResetError"


def test_another_job_sees_none_of_these_addresses(federation: Federation,
                                                  p2p_image: str) -> None:
    """A run of another job is shown only its own job's addresses, and the local ports
    handed out in other jobs are closed in its namespace."""
    first, second = federation.organization_ids[:2]
    held = federation.create_task("hold", image=p2p_image, kwargs={"seconds": 20},
                                  organization_ids=[first], databases=[])
    held_run = _wait_active(federation, held["id"])
    other = federation.create_task("addresses", image=p2p_image,
                                   kwargs={"include_children": True, "include_parent": True},
                                   organization_ids=[second], databases=[])
    probe = federation.create_task("probe_ports", image=p2p_image,
                                   kwargs={"ports": [LOCAL_PORTS[0], LOCAL_PORTS[1]]},
                                   organization_ids=[second], databases=[])
    seen = _results(federation, other)[second]
    ports = _results(federation, probe)[second]
    assert held_run["id"] not in {a["run_id"] for a in seen}
    assert {a["task_id"] for a in seen} == {other["id"]}
    assert set(ports.values()) == {"refused"}
