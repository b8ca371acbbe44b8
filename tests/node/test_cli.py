"""`v6flow node start` against a real server: start-up checks that name the wrong setting,
`connecting`/`online`, the pid file that `node list` and `node files` read."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.federation import write_node_config
from tests.fixtures.server import free_port
from v6flow.cli.exit_codes import ExitCode
from v6flow_node.preflight import transport_problem

CLI = (sys.executable, "-m", "v6flow.cli.main")
#: The start-up checks are bounded: a wrong setting is reported within this time.
CHECK_DEADLINE = 30.0


def _start(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "node", "start", "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=CHECK_DEADLINE, check=False,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "400"})


def _config(tmp_path: Path, base_image: str, *, server_url: str, api_key: str | None = None,
            name: str = "checked", task_dir: Path | None = None) -> Path:
    csv = tmp_path / "d.csv"
    csv.write_text("a\n1\n", encoding="utf-8")
    return write_node_config(tmp_path / "node.yaml", server_url=server_url,
                             api_key=api_key or str(uuid.uuid4()), name=name,
                             task_dir=task_dir or tmp_path / "tasks", csv_path=csv,
                             sidecar_image=base_image)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_unknown_api_key_names_api_key_and_exits_with_authentication_code(
        server: Any, base_image: str, tmp_path: Path) -> None:
    """A key the server does not know stops the start with exit 3, naming api_key, not
    showing the key."""
    # Prepare
    key = str(uuid.uuid4())
    config = _config(tmp_path, base_image, server_url=server.url, api_key=key)
    # Execute
    proc = _start(config)
    # Assert
    err = _one_line(proc.stderr)
    assert proc.returncode == ExitCode.AUTHENTICATION, proc.stderr
    assert "api_key: the server at" in err and str(config) in err
    assert key not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_refused_server_url_is_named_with_a_hint_and_exit_6(
        base_image: str, tmp_path: Path) -> None:
    """Nothing listens at server_url: one message naming it and the fix, exit 6, no retries."""
    # Prepare
    url = f"http://127.0.0.1:{free_port()}/api"
    config = _config(tmp_path, base_image, server_url=url)
    # Execute
    started = time.monotonic()
    proc = _start(config)
    # Assert
    err = _one_line(proc.stderr)
    assert proc.returncode == ExitCode.SERVER_UNREACHABLE, proc.stderr
    assert f"server_url {url}: connection refused — is the server running" in err
    assert f"check server_url in {config}" in err
    assert time.monotonic() - started < CHECK_DEADLINE
    assert "Traceback" not in proc.stderr and "retry" not in proc.stderr


def test_server_url_without_api_root_suggests_it(server: Any, base_image: str,
                                                 tmp_path: Path) -> None:
    """A server_url missing its /api answers 404 on /health; the message offers the right URL."""
    # Prepare
    bare = server.url.removesuffix("/api")
    config = _config(tmp_path, base_image, server_url=bare)
    # Execute
    proc = _start(config)
    # Assert
    err = _one_line(proc.stderr)
    assert proc.returncode == ExitCode.SERVER_UNREACHABLE, proc.stderr
    assert f"server_url {bare}: no v6flow API at this path" in err
    assert f"did you mean {server.url}?" in err


def test_https_to_a_plain_http_server_is_a_tls_failure(server: Any, base_image: str,
                                                       tmp_path: Path) -> None:
    """https:// against the plain-http server: the TLS handshake fails, and the message says
    to use http://."""
    # Prepare
    url = server.url.replace("http://", "https://", 1)
    config = _config(tmp_path, base_image, server_url=url)
    # Execute
    proc = _start(config)
    # Assert
    err = _one_line(proc.stderr)
    assert proc.returncode == ExitCode.SERVER_UNREACHABLE, proc.stderr
    assert f"server_url {url}: TLS handshake failed" in err and "use http://" in err


def test_unresolvable_host_is_named() -> None:
    """A name-resolution failure (as httpx raises it) reads as the host that cannot be found."""
    # Prepare
    try:
        raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(
            -2, "Name or service not known")
    except httpx.ConnectError as exc:
        error = exc
    # Execute
    problem, hint = transport_problem(error, "http://data-station.example:7601/api")
    # Assert
    assert problem == "the host name 'data-station.example' cannot be resolved"
    assert "server_url" in hint


def test_task_dir_that_cannot_be_made_is_named(base_image: str, tmp_path: Path) -> None:
    """A task_dir below a file: exit 2 naming task_dir, before any connection."""
    # Prepare
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    config = _config(tmp_path, base_image, server_url=f"http://127.0.0.1:{free_port()}/api",
                     task_dir=blocker / "tasks")
    # Execute
    proc = _start(config)
    # Assert
    assert proc.returncode == ExitCode.CONFIGURATION, proc.stderr
    assert f"task_dir {blocker / 'tasks'}: cannot create or write it" in _one_line(proc.stderr)
    assert "connecting" not in proc.stderr


def test_missing_sidecar_image_is_named_with_the_build_command(tmp_path: Path) -> None:
    """A sidecar_image the engine lacks: exit 2 naming it and `v6flow image build-base`."""
    # Prepare
    config = _config(tmp_path, "v6flow-test/no-such-sidecar:0",
                     server_url=f"http://127.0.0.1:{free_port()}/api")
    # Execute
    proc = _start(config)
    # Assert
    err = _one_line(proc.stderr)
    assert proc.returncode == ExitCode.CONFIGURATION, proc.stderr
    assert "sidecar_image v6flow-test/no-such-sidecar:0: not present" in err
    assert "v6flow image build-base" in err


# --- a node that starts -----------------------------------------------------------------------

@dataclass
class RunningNode:
    """One `v6flow node start` process of a registered node."""

    config: Path
    config_dir: Path
    task_dir: Path
    name: str
    node_id: int
    log_path: Path
    log_file: Path
    proc: subprocess.Popen[bytes]

    def output(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")


def _register(server: Any) -> dict[str, Any]:
    """A new organization, collaboration and node; returns the node (with its api_key)."""
    token = httpx.post(f"{server.url}/token/user", json={
        "username": "root", "password": server.root_password}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    suffix = uuid.uuid4().hex[:6]

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{server.url}/{path}", json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    org = post("organization", {"name": f"cli-org-{suffix}"})
    collab = post("collaboration", {"name": f"cli-collab-{suffix}",
                                    "organization_ids": [org["id"]], "encrypted": False})
    return post("node", {"organization_id": org["id"], "collaboration_id": collab["id"],
                         "name": f"cli-{suffix}"})


@pytest.fixture(scope="module")
def running_node(server: Any, base_image: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A registered node started from a config in its config folder, until the module ends;
    at teardown it must stop with exit 0 and remove its pid file."""
    directory = tmp_path_factory.mktemp("cli-node")
    node = _register(server)
    config_dir = directory / "configs"
    config_dir.mkdir()
    config = _config(directory, base_image, server_url=server.url, api_key=node["api_key"],
                     name=node["name"], task_dir=directory / "tasks")
    config = config.rename(config_dir / f"{node['name']}.yaml")
    log_path, log_file = directory / "output.txt", directory / "logs" / "node.jsonl"
    with log_path.open("wb") as out:
        proc = subprocess.Popen([*CLI, "node", "start", "--config", str(config),
                                 "--log-file", str(log_file)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    running = RunningNode(config=config, config_dir=config_dir, task_dir=directory / "tasks",
                          name=node["name"], node_id=node["id"], log_path=log_path,
                          log_file=log_file, proc=proc)
    deadline = time.monotonic() + 60
    while "online" not in running.output() and time.monotonic() < deadline:
        assert proc.poll() is None, running.output()
        time.sleep(0.1)
    yield running
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, running.output()
    assert not (running.task_dir / running.name / "node.pid").exists()


def test_start_shows_connecting_then_online(server: Any, running_node: RunningNode) -> None:
    """The start prints `connecting`, then `online` once the server lists the node online."""
    # Execute
    output = running_node.output()
    # Assert
    assert f"connecting to {server.url}" in output
    assert f"online: the server lists node '{running_node.name}' as online" in output
    assert output.index("connecting") < output.index("online:")
    status = httpx.get(f"{server.url}/node/{running_node.node_id}", headers={
        "Authorization": "Bearer " + httpx.post(f"{server.url}/token/user", json={
            "username": "root", "password": server.root_password}).json()["access_token"]})
    assert status.json()["status"] == "online"


def test_list_shows_the_running_node_with_its_pid(running_node: RunningNode) -> None:
    """`node list` finds the node's pid file and shows it running, with the process's pid."""
    # Execute
    proc = subprocess.run([*CLI, "node", "list", "--config-dir", str(running_node.config_dir),
                           "--json"], capture_output=True, text=True, timeout=60, check=True)
    # Assert
    (row,) = json.loads(proc.stdout)["nodes"]
    assert row["name"] == running_node.name and row["problem"] is None
    assert row["running"] is True and row["pid"] == running_node.proc.pid


def test_files_names_the_running_nodes_folders_and_log(running_node: RunningNode) -> None:
    """`node files` prints the node folder, its proxy socket (which exists), the pid file and
    the --log-file the node writes its JSON log to."""
    # Execute
    proc = subprocess.run([*CLI, "node", "files", "--config", str(running_node.config),
                           "--json"], capture_output=True, text=True, timeout=60, check=True)
    # Assert
    places = json.loads(proc.stdout)
    folder = running_node.task_dir.resolve() / running_node.name
    assert places["node_dir"] == str(folder)
    assert Path(places["proxy_socket"]).is_socket()
    record = json.loads(Path(places["pid_file"]).read_text(encoding="utf-8"))
    assert record["pid"] == running_node.proc.pid
    assert record["config"] == str(running_node.config.resolve())
    assert places["log"] == str(running_node.log_file.resolve())
    events = [json.loads(line)["event"]
              for line in running_node.log_file.read_text(encoding="utf-8").splitlines()]
    assert "node started" in events


def test_a_second_process_for_the_same_node_is_refused(running_node: RunningNode) -> None:
    """Starting a node that already runs stops with exit 1, naming the running pid."""
    # Execute
    proc = _start(running_node.config)
    # Assert
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    assert f"is already running (pid {running_node.proc.pid}" in _one_line(proc.stderr)
    assert running_node.proc.poll() is None


def test_stopped_node_is_listed_as_stopped(server: Any, base_image: str,
                                           tmp_path: Path) -> None:
    """A config whose node never ran (or left a stale pid file) reads as stopped."""
    # Prepare: a pid file of a process that is gone
    config = _config(tmp_path, base_image, server_url=server.url, name="gone")
    folder = tmp_path / "tasks" / "gone"
    folder.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / "node.pid").write_text(json.dumps({
        "pid": dead.pid, "config": str(config.resolve()), "name": "gone"}), encoding="utf-8")
    # Execute
    proc = subprocess.run([*CLI, "node", "list", "--config-dir", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=60, check=True)
    # Assert
    rows = {row["name"]: row for row in json.loads(proc.stdout)["nodes"]}
    assert rows["gone"]["running"] is False and rows["gone"]["pid"] is None
