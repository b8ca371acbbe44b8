"""Live logs, kills and node restarts."""

from __future__ import annotations

import signal
import time

import docker

from tests.fixtures.federation import Federation, labelled_leftovers
from v6flow.wire import result_from_wire


def _wait_active(federation: Federation, task_id: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if federation.runs(task_id)[0]["status"] == "active":
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never became active")


def test_live_log_lines_arrive_before_the_run_finishes(federation: Federation,
                                                       probe_image: str) -> None:
    """Lines printed by a running algorithm reach run.log while the run is still active."""
    # Execute
    task = federation.create_task("ticker", image=probe_image,
                                  kwargs={"count": 8, "interval": 0.5},
                                  organization_ids=federation.organization_ids[:1])
    seen_live = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and seen_live is None:
        (run,) = federation.runs(task["id"])
        if run["finished_at"]:
            break
        if run["log"] and "tick 1" in run["log"]:
            seen_live = run
        time.sleep(0.1)
    (final,) = federation.wait_for_runs(task["id"])
    # Assert
    assert seen_live is not None, f"no live line before the end: {final['log']!r}"
    assert seen_live["status"] == "active"
    assert "tick 7" not in seen_live["log"]
    assert final["status"] == "completed"
    assert all(f"tick {i}" in final["log"] for i in range(8))


def test_kill_stops_the_container(federation: Federation) -> None:
    """POST /kill/task kills the container; the run stays `killed by user`, keeps its log."""
    # Prepare
    node = federation.nodes[1]
    task = federation.create_task("sleep", args=[60], organization_ids=[node.organization_id])
    _wait_active(federation, task["id"])
    deadline = time.monotonic() + 15  # the wrapper's "calling ..." line arrived live
    while time.monotonic() < deadline and "sleep" not in (federation.runs(task["id"])[0]
                                                          .get("log") or ""):
        time.sleep(0.1)
    # Execute
    response = federation.request("POST", "kill/task", json={"id": task["id"]})
    assert response.status_code == 200, response.text
    (run,) = federation.wait_for_runs(task["id"])
    # Assert
    assert run["status"] == "killed by user"
    client = docker.from_env()
    name = f"v6flow-{node.name}-run-{run['id']}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and client.api.containers(all=True,
                                                                filters={"name": name}):
        time.sleep(0.1)
    assert not client.api.containers(all=True, filters={"name": name})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "sleep" not in (run.get("log") or ""):
        time.sleep(0.1)
        run = federation.get(f"run/{run['id']}")
    assert "sleep" in (run.get("log") or ""), run.get("log")  # the wrapper's "calling ..." line
    assert run["status"] == "killed by user"


def test_restarted_node_picks_up_a_run_created_while_it_was_down(
        federation: Federation) -> None:
    """A run created while its node is stopped completes after the node starts again."""
    # Prepare
    node = federation.nodes[2]
    assert federation.stop_node(node) == 0
    # Execute
    task = federation.create_task("row_count", organization_ids=[node.organization_id])
    time.sleep(0.5)
    (pending,) = federation.runs(task["id"])
    federation.start_node(node)
    federation.wait_online(node)
    (run,) = federation.wait_for_runs(task["id"])
    # Assert
    assert pending["status"] == "pending"
    assert run["status"] == "completed", run["log"]
    rows = sum(1 for _ in node.csv_path.open()) - 1
    (item,) = federation.results(task["id"])
    assert result_from_wire(item["result"]) == rows


def test_sigterm_reports_active_run_and_removes_everything(federation: Federation) -> None:
    """SIGTERM kills a running container, reports the run, cleans up and exits 0."""
    # Prepare
    node = federation.nodes[1]
    task = federation.create_task("sleep", args=[60], organization_ids=[node.organization_id])
    _wait_active(federation, task["id"])
    # Execute
    code = federation.stop_node(node)
    # Assert
    try:
        assert code == 0, node.log_text()
        (run,) = federation.runs(task["id"])
        assert run["status"] == "failed"
        assert run["finished_at"]
        assert f"node {node.name} was stopped" in run["log"]
        assert labelled_leftovers([node.name]) == []
    finally:
        federation.start_node(node)
        federation.wait_online(node)


def test_restarted_node_adopts_its_running_container(federation: Federation,
                                                     probe_image: str) -> None:
    """After a crash (SIGKILL) the new node process adopts the container instead of rerunning."""
    # Prepare
    node = federation.nodes[0]
    task = federation.create_task("ticker", image=probe_image,
                                  kwargs={"count": 6, "interval": 0.5},
                                  organization_ids=[node.organization_id])
    _wait_active(federation, task["id"])
    # Execute
    assert node.proc is not None
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait(timeout=10)
    federation.start_node(node)
    federation.wait_online(node)
    (run,) = federation.wait_for_runs(task["id"])
    # Assert
    assert run["status"] == "completed", run["log"]
    assert [line for line in run["log"].splitlines() if line.startswith("tick")] == [
        f"tick {i}" for i in range(6)]
    (item,) = federation.results(task["id"])
    assert result_from_wire(item["result"]) == 6
    assert "adopting a container" in node.log_text()


def test_deleting_a_running_task_logs_one_line_and_no_traceback(
        federation: Federation) -> None:
    """DELETE /task of a running task: the node stops the container and says so in one line."""
    # Prepare
    node = federation.nodes[0]
    task = federation.create_task("sleep", args=[60], organization_ids=[node.organization_id])
    _wait_active(federation, task["id"])
    (run,) = federation.runs(task["id"])
    name = f"v6flow-{node.name}-run-{run['id']}"
    engine = docker.from_env()
    seen = len(node.log_text())
    line = (f"run {run['id']} of task {task['id']} was deleted on the server; "
            "container stopped")
    # Execute
    response = federation.request("DELETE", f"task/{task['id']}")
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
            line not in node.log_text()[seen:]
            or engine.api.containers(all=True, filters={"name": name})):
        time.sleep(0.1)
    time.sleep(1.0)  # anything the node would log after the container is gone
    # Assert
    logged = node.log_text()[seen:]
    assert logged.count(line) == 1, logged
    assert "Traceback" not in logged and "run handling failed" not in logged, logged
    assert not engine.api.containers(all=True, filters={"name": name})
