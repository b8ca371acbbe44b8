"""What an algorithm container sees: decoded env, only `lo`, the proxy, its own folder."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.federation import Federation
from v6flow.wire import result_from_wire


def _run_one(federation: Federation, image: str, method: str, index: int = 0,
             **kwargs: Any) -> tuple[dict[str, Any], Any]:
    task = federation.create_task(method, image=image, kwargs=kwargs,
                                  organization_ids=[federation.organization_ids[index]])
    (run,) = federation.wait_for_runs(task["id"])
    assert run["status"] == "completed", run["log"]
    (item,) = federation.results(task["id"])
    return run, result_from_wire(item["result"])


def test_env_report_sees_contract_env_and_only_loopback(federation: Federation) -> None:
    """env_report: every contract variable is set and `lo` is the only interface."""
    _run, report = _run_one(federation, federation.test_image, "env_report")
    assert set(report["set"]) >= {"INPUT_FILE", "OUTPUT_FILE", "TOKEN_FILE", "TEMPORARY_FOLDER",
                                  "HOST", "PORT", "API_PATH", "USER_REQUESTED_DATABASE_LABELS",
                                  "DB_LABELS", "DEFAULT_DATABASE_URI", "DEFAULT_DATABASE_TYPE"}
    assert report["interfaces"] == ["lo"]


def test_env_values_decode_and_proxy_answers(federation: Federation, probe_image: str) -> None:
    """Encoded env values arrive decoded, and HOST:PORT reaches the server via the proxy."""
    run, report = _run_one(federation, probe_image, "network", index=1)
    node = federation.nodes[1]
    assert report["interfaces"] == ["lo"]
    assert report["env"] == {
        "HOST": "http://127.0.0.1", "PORT": "8080", "API_PATH": "",
        "INPUT_FILE": f"/mnt/data/task-{run['id']:09d}/input", "TEMPORARY_FOLDER": "/mnt/tmp",
        "DEFAULT_DATABASE_URI": f"/mnt/default/{node.csv_path.name}",
    }
    assert report["proxy_status"] == 200  # GET /health through sidecar → proxy → server


@pytest.fixture
def host_loopback_server() -> Iterator[dict[str, Any]]:
    """A TCP server on the host's 127.0.0.1 that counts the connections it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    state: dict[str, Any] = {"port": server.getsockname()[1], "accepted": 0, "stop": False}

    def serve() -> None:
        while not state["stop"]:
            try:
                conn, _addr = server.accept()
            except TimeoutError:
                continue
            state["accepted"] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    state["stop"] = True
    thread.join()
    server.close()


def test_host_loopback_is_unreachable(federation: Federation, probe_image: str,
                                      host_loopback_server: dict[str, Any]) -> None:
    """A server on the host's loopback cannot be reached from an algorithm container."""
    # Prepare: the host itself can reach it
    with socket.create_connection(("127.0.0.1", host_loopback_server["port"]), timeout=2):
        pass
    deadline = time.monotonic() + 5
    while host_loopback_server["accepted"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    accepted_before = host_loopback_server["accepted"]
    assert accepted_before == 1
    # Execute
    _run, outcome = _run_one(federation, probe_image, "connect",
                             port=host_loopback_server["port"])
    # Assert
    assert outcome["connected"] is False
    assert "refused" in outcome["error"].lower()
    assert host_loopback_server["accepted"] == accepted_before


def test_container_sees_only_its_own_folder_and_read_only_data(federation: Federation,
                                                               probe_image: str) -> None:
    """/mnt/data holds only this run's folder; the database mount is read-only."""
    run, seen = _run_one(federation, probe_image, "mounts", index=2)
    assert seen == {"data": [f"task-{run['id']:09d}"], "database_exists": True,
                    "database_writable": False}
