"""A node that dies and stays away: its started runs fail, visibly, and never run twice.

A dedicated server fails the started runs of a node offline for more than 8 s (checked every
0.5 s). A real node process starts a run, is SIGKILLed while its container is active, and
the test watches the run fail with the reason in its log, a waiting client wake up, a late
PATCH be refused, and the restarted node leave the run alone.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import HTTP, auth
from v6flow.client import Client
from v6flow.status import RunStatus
from v6flow.wire import parse_datetime

OFFLINE_SECONDS = 8.0
INTERVAL_SECONDS = 0.5


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that fails runs of nodes offline for more than 8 s."""
    directory = tmp_path_factory.mktemp("offline")
    proc = start_server(
        database_url=f"sqlite:///{directory}/server.sqlite",
        root_password=secrets.token_urlsafe(12), log_dir=directory,
        extra_env={"V6FLOW_SERVER_NODE_OFFLINE_FAIL_SECONDS": str(OFFLINE_SECONDS),
                   "V6FLOW_SERVER_PRESENCE_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
                   "V6FLOW_SERVER_KEEPALIVE_SECONDS": "0.5"})
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def one_node(offline_server: ServerProcess, base_image: str, test_algorithm_image: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One organization with one real node process."""
    fed = create_federation(server_url=offline_server.url,
                            root_password=offline_server.root_password,
                            directory=tmp_path_factory.mktemp("offline-fed"),
                            base_image=base_image, test_image=test_algorithm_image,
                            sizes=(30,))
    yield fed
    shutdown_federation(fed)


def _run(fed: Federation, task_id: int) -> dict[str, Any]:
    return fed.runs(task_id)[0]


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen within {timeout} s")


def test_a_killed_node_s_active_run_fails_and_is_not_run_again(one_node: Federation) -> None:
    """SIGKILL mid-run: failed after the cutoff with the reason; not restarted by the node."""
    fed = one_node
    node = fed.nodes[0]
    # Prepare: an active run, and a client waiting for its task (as a flow would).
    task = fed.create_task("sleep", kwargs={"seconds": 120})
    waited: dict[str, Any] = {}

    def wait() -> None:
        with Client(fed.server_url, username=fed.username, password=fed.password) as client:
            waited["status"] = client.wait_for_task(task["id"], timeout=90)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    _wait_for(lambda: _run(fed, task["id"])["status"] == "active", 90, "the run active")
    # Execute: the node dies and stays away.
    assert node.proc is not None
    node.proc.kill()
    node.proc.wait(timeout=30)
    node.proc = None
    killed_at = time.monotonic()
    run = _wait_for(lambda: (r := _run(fed, task["id"]))["finished_at"] and r, 30,
                    "the run finished")
    failed_after = time.monotonic() - killed_at
    # Assert: failed, with the reason, not before the cutoff; the waiting client woke up.
    assert run["status"] == RunStatus.FAILED.value
    assert f"node '{node.name}' offline since" in run["log"]
    assert failed_after >= OFFLINE_SECONDS - 1, failed_after
    waiter.join(timeout=30)
    assert waited.get("status") is RunStatus.FAILED
    # A late report of the node is refused.
    node_token = HTTP.post(f"{fed.server_url}/token/node",
                           json={"api_key": node.api_key}).json()["access_token"]
    late = HTTP.patch(f"{fed.server_url}/run/{run['id']}", headers=auth(node_token),
                      json={"status": "completed", "result": ""})
    assert late.status_code == 400 and "finished" in late.json()["msg"]
    # The node comes back: its open-run sync does not list the run and it does not start it.
    log_mark = len(node.log_text())
    fed.start_node(node)
    fed.wait_online(node)
    open_runs = HTTP.get(f"{fed.server_url}/run", headers=auth(node_token),
                         params={"state": "open", "node_id": node.node_id}).json()["data"]
    assert run["id"] not in [r["id"] for r in open_runs]
    time.sleep(3 * INTERVAL_SECONDS + 1)  # the sync on connect has happened
    after = _run(fed, task["id"])
    assert (after["status"], after["finished_at"], after["started_at"]) == (
        run["status"], run["finished_at"], run["started_at"])
    restarted_log = node.log_text()[log_mark:]
    assert f'"run_id": {run["id"]}' not in restarted_log, restarted_log


def test_a_node_that_comes_back_in_time_keeps_its_run(one_node: Federation) -> None:
    """A node offline for less than the cutoff finds its run still open and finishes it."""
    fed = one_node
    node = fed.nodes[0]
    task = fed.create_task("sleep", kwargs={"seconds": 6})
    _wait_for(lambda: _run(fed, task["id"])["status"] == "active", 90, "the run active")
    assert node.proc is not None
    node.proc.kill()
    node.proc.wait(timeout=30)
    node.proc = None
    fed.start_node(node)
    runs = fed.wait_for_runs(task["id"], timeout=90)
    assert runs[0]["status"] == RunStatus.COMPLETED.value, runs[0]["log"]
    assert parse_datetime(runs[0]["finished_at"]) > parse_datetime(runs[0]["started_at"])


def test_the_sweep_keeps_an_online_node_s_runs(one_node: Federation) -> None:
    """A node holding its stream for longer than the cutoff keeps its active run."""
    fed = one_node
    fed.wait_online(fed.nodes[0])
    task = fed.create_task("sleep", kwargs={"seconds": OFFLINE_SECONDS + 2})
    runs = fed.wait_for_runs(task["id"], timeout=90)
    assert runs[0]["status"] == RunStatus.COMPLETED.value
    assert "offline since" not in (runs[0]["log"] or "")
