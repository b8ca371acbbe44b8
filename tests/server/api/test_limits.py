"""Size limits: bodies are refused before they are read, pages and logs stay bounded.

The attacks of the security review, replayed against a real server: a 100 MB anonymous body
to ``/token/user`` (announced and chunked), pages of runs and results over rows of large
stored text, and endless log appends. Memory is the server process's own peak RSS
(``VmHWM``), reset before each request (``/proc/<pid>/clear_refs``) and compared with the RSS
it held just before, so the bound does not depend on what the process held at start.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import HTTP, World, build_world, unique
from v6flow.schemas import MAX_LOG_LINES_PER_CALL

MB = 1024 * 1024
#: How far the peak RSS may rise for one request; the previous code rose 190-300 MB.
GROWTH_BOUND_MB = 100
LOG_BYTES = 4096
LINE_BYTES = 200
MAX_BODY = 1024 * 1024  # the default of max_body_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own (default body limits, small log limits) on SQLite."""
    directory = tmp_path_factory.mktemp("limits")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory,
                        extra_env={"V6FLOW_SERVER_MAX_LOG_BYTES": str(LOG_BYTES),
                                   "V6FLOW_SERVER_MAX_LOG_LINE_BYTES": str(LINE_BYTES)})
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def small_world(server: ServerProcess) -> World:
    """Organizations, a collaboration with nodes, and a researcher on that server."""
    return build_world(server)


def _kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


class Peak:
    """Peak RSS growth of the server process over a block (``with Peak(pid) as peak``)."""

    def __init__(self, pid: int) -> None:
        """Measure process ``pid``."""
        self.pid = pid
        self.before_kb = 0
        self.growth_mb = 0.0

    def __enter__(self) -> Peak:
        """Reset the process's peak to its current RSS."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.before_kb = _kb(self.pid, "VmRSS")
        return self

    def __exit__(self, *_exc: object) -> None:
        """Read how far the peak rose."""
        self.growth_mb = (_kb(self.pid, "VmHWM") - self.before_kb) / 1024


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _read_answer(sock: socket.socket) -> bytes:
    """Read one HTTP answer (head and its Content-Length body) or until the peer closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def announce(port: int, method: str, path: str, length: int,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Send only a request head announcing ``length`` body bytes; return the answer at once."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     f"\r\nContent-Length: {length}\r\n{extra}\r\n".encode())
        answer = _read_answer(sock)
    return _status(answer), json.loads(answer.partition(b"\r\n\r\n")[2] or b"{}")


def send_junk(port: int, path: str, size: int, *, chunked: bool) -> int:
    """POST ``size`` junk bytes while reading the answer; returns its status."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"{framing}\r\n\r\n".encode())
    block = b"x" * MB

    def write() -> None:
        sent = 0
        try:
            while sent < size:
                sock.sendall(f"{MB:x}\r\n".encode() + block + b"\r\n" if chunked else block)
                sent += MB
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # answered and closed: the server does not want the rest
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        return _status(_read_answer(sock))
    finally:
        sock.close()
        writer.join(timeout=60)


def _big_input(size: int) -> str:
    raw = json.dumps({"method": "echo", "kwargs": {"pad": secrets.token_hex(size * 3 // 8)}})
    return base64.b64encode(raw.encode()).decode()


def _slow_get(world: World, path: str, params: dict[str, Any]) -> httpx.Response:
    return HTTP.get(f"{world.url}{path}", params=params, timeout=120,
                    headers={"Authorization": f"Bearer {world.root_token}"})


def _create_task(world: World, payload: str) -> dict[str, Any]:
    body = world.task_body()
    for target in body["organizations"]:
        target["input"] = payload
    return dict(world.ok("POST", "/task", world.researcher_token, json=body))


# --- bodies ------------------------------------------------------------------------------

def test_an_announced_oversized_body_is_refused_before_it_is_sent(server: ServerProcess) -> None:
    """Content-Length of 100 MB to /token/user: 413 {"msg"} without a byte of the body."""
    status, body = announce(server.port, "POST", "/api/token/user", 100 * MB)
    assert status == 413
    assert str(MAX_BODY) in body["msg"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_junk_body_to_login_leaves_memory_flat(server: ServerProcess, chunked: bool) -> None:
    """100 MB of junk (announced or chunked) is answered 413; the peak RSS barely moves."""
    with Peak(server.process.pid) as peak:
        status = send_junk(server.port, "/api/token/user", 100 * MB, chunked=chunked)
    assert status == 413
    assert peak.growth_mb < GROWTH_BOUND_MB, peak.growth_mb


def test_every_route_has_a_body_limit(server: ServerProcess) -> None:
    """Every operation of the OpenAPI document answers 413 to a body over the default limit."""
    spec = HTTP.get(f"{server.url}/openapi.json").json()
    checked = 0
    for path, item in spec["paths"].items():
        for method in item:
            concrete = path
            for name in {p.split("}")[0] for p in path.split("{")[1:]}:
                concrete = concrete.replace(f"{{{name}}}", "1")
            status, body = announce(server.port, method.upper(), concrete, MAX_BODY + 1)
            assert (status, "msg" in body) == (413, True), (method, path, status, body)
            checked += 1
    assert checked >= 40


@pytest.mark.parametrize(("method", "path", "limit", "kind"), [
    ("POST", "/api/task", 16 * MB, "user"), ("PATCH", "/api/run/1", 64 * MB, "node")])
def test_a_raised_limit_has_a_limit_too(server: ServerProcess, small_world: World, method: str,
                                        path: str, limit: int, kind: str) -> None:
    """The routes that take more (tasks, results) still answer 413 past their own limit."""
    token = (small_world.researcher_token if kind == "user"
             else small_world.node_token(small_world.org_ids[0]))
    status, body = announce(server.port, method, path, limit + 1,
                            {"Authorization": f"Bearer {token}"})
    assert (status, str(limit) in body["msg"]) == (413, True)


def test_a_raised_limit_needs_a_valid_token_of_the_right_kind(small_world: World) -> None:
    """A 2 MB result is taken from the run's node only; anonymous and user callers get 413."""
    world = small_world
    task = world.create_task()
    run = next(r for r in world.runs(task["id"]) if r["organization"]["id"] == world.org_ids[0])
    body = {"result": base64.b64encode(b"r" * 2 * MB).decode()}
    anonymous = HTTP.patch(f"{world.url}/run/{run['id']}", json=body)
    as_user = world.call("PATCH", f"/run/{run['id']}", world.researcher_token, json=body)
    as_node = world.call("PATCH", f"/run/{run['id']}", world.node_token(world.org_ids[0]),
                         json=body)
    assert (anonymous.status_code, as_user.status_code, as_node.status_code) == (413, 413, 200)
    assert world.ok("GET", f"/result/{run['id']}")["result"] == body["result"]


def test_a_task_may_carry_more_than_the_default_limit(small_world: World) -> None:
    """POST /task takes a 2 MB input from a researcher, not from an anonymous caller."""
    world = small_world
    body = world.task_body()
    body["organizations"][0]["input"] = _big_input(2 * MB)
    assert HTTP.post(f"{world.url}/task", json=body).status_code == 413
    assert world.call("POST", "/task", world.researcher_token, json=body).status_code == 201


# --- pages -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def large_inputs(small_world: World) -> dict[int, str]:
    """About 64 MB of stored inputs: 8 tasks whose two runs carry 4 MB each (by run id)."""
    inputs: dict[int, str] = {}
    for _ in range(8):
        payload = _big_input(4 * MB)
        task = _create_task(small_world, payload)
        inputs.update({run["id"]: payload for run in small_world.runs(task["id"])})
    return inputs


def test_run_lists_leave_input_out_unless_asked(small_world: World,
                                                large_inputs: dict[int, str]) -> None:
    """GET /run has no input; include=input streams every input exactly as stored."""
    plain = small_world.ok("GET", "/run", params={"per_page": 1000})["data"]
    assert plain and all(run["input"] is None for run in plain)
    full = small_world.ok("GET", "/run", params={"per_page": 1000, "include": "input"})["data"]
    assert [run["id"] for run in full] == [run["id"] for run in plain]
    assert {run["id"]: run["input"] for run in full if run["id"] in large_inputs} == large_inputs


@pytest.mark.parametrize("include", [None, "input"])
def test_a_page_of_large_inputs_keeps_memory_bounded(server: ServerProcess, small_world: World,
                                                     large_inputs: dict[int, str],
                                                     include: str | None) -> None:
    """GET /run?per_page=1000 over 64 MB of inputs: the peak RSS rises < 100 MB."""
    params: dict[str, Any] = {"per_page": 1000, **({"include": include} if include else {})}
    with Peak(server.process.pid) as peak:
        response = _slow_get(small_world, "/run", params)
    assert response.status_code == 200
    sent = {run["id"]: run["input"] for run in response.json()["data"]}
    assert {k: sent[k] for k in large_inputs} == (
        large_inputs if include else dict.fromkeys(large_inputs))
    assert peak.growth_mb < GROWTH_BOUND_MB, peak.growth_mb


@pytest.fixture(scope="module")
def large_results(small_world: World, large_inputs: dict[int, str]) -> dict[int, str]:
    """About 32 MB of results: a node reports 4 MB for each of its 8 runs (by run id)."""
    world = small_world
    node = world.node_token(world.org_ids[0])
    results: dict[int, str] = {}
    for run_id in sorted(large_inputs)[:24]:
        run = world.ok("GET", f"/run/{run_id}")
        if run["organization"]["id"] != world.org_ids[0]:
            continue
        results[run_id] = base64.b64encode(secrets.token_bytes(3 * MB)).decode()
        world.ok("PATCH", f"/run/{run_id}", node,
                 json={"result": results[run_id], "status": "completed"})
    return results


def test_a_page_of_large_results_keeps_memory_bounded(server: ServerProcess, small_world: World,
                                                      large_results: dict[int, str]) -> None:
    """GET /result over 32 MB of results answers them all; the peak RSS rises < 100 MB."""
    with Peak(server.process.pid) as peak:
        response = _slow_get(small_world, "/result", {"per_page": 1000})
    got = {item["id"]: item["result"] for item in response.json()["data"]}
    assert {k: got[k] for k in large_results} == large_results
    assert peak.growth_mb < GROWTH_BOUND_MB, peak.growth_mb


@pytest.mark.parametrize("include", [None, "results", "runs"])
def test_a_page_of_tasks_keeps_memory_bounded(server: ServerProcess, small_world: World,
                                              large_results: dict[int, str],
                                              include: str | None) -> None:
    """GET /task?per_page=1000 over large inputs and results: the peak RSS rises < 100 MB."""
    params: dict[str, Any] = {"per_page": 1000, **({"include": include} if include else {})}
    with Peak(server.process.pid) as peak:
        response = _slow_get(small_world, "/task", params)
    assert response.status_code == 200
    embedded = {item["id"]: item["result"] for task in response.json()["data"]
                if isinstance(task["results"], list) for item in task["results"]}
    assert ({k: embedded[k] for k in large_results} if include == "results" else embedded) == (
        large_results if include == "results" else {})
    assert peak.growth_mb < GROWTH_BOUND_MB, peak.growth_mb


# --- logs --------------------------------------------------------------------------------

def _running_run(world: World) -> tuple[int, str]:
    task = world.create_task([world.org_ids[0]], name=unique("log"))
    run_id = world.runs(task["id"])[0]["id"]
    token = world.node_token(world.org_ids[0])
    world.ok("PATCH", f"/run/{run_id}", token, json={"status": "active"})
    return run_id, token


def test_a_log_append_carries_a_bounded_number_of_lines(small_world: World) -> None:
    """More than MAX_LOG_LINES_PER_CALL lines in one call is a 400 naming ``lines``."""
    run_id, token = _running_run(small_world)
    response = small_world.call("POST", f"/run/{run_id}/log", token,
                                json={"lines": ["x"] * (MAX_LOG_LINES_PER_CALL + 1)})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "lines"


def test_an_overlong_log_line_is_cut_and_says_so(small_world: World) -> None:
    """A line over max_log_line_bytes is stored cut to that size, marked as cut."""
    run_id, token = _running_run(small_world)
    small_world.ok("POST", f"/run/{run_id}/log", token, json={"lines": ["é" * LINE_BYTES]})
    stored = small_world.ok("GET", f"/run/{run_id}")["log"].rstrip("\n")
    assert stored.endswith(" [line cut]") and stored.startswith("é")
    assert len(stored.encode()) <= LINE_BYTES


def test_a_growing_log_keeps_its_tail_and_says_it_was_truncated(small_world: World) -> None:
    """Appending 10x max_log_bytes keeps the last lines within the limit, under a note."""
    run_id, token = _running_run(small_world)
    lines = [f"line {i:05d} " + "y" * 80 for i in range(LOG_BYTES * 10 // 90)]
    for start in range(0, len(lines), 50):
        small_world.ok("POST", f"/run/{run_id}/log", token, json={"lines": lines[start:start + 50]})
    stored = small_world.ok("GET", f"/run/{run_id}")["log"]
    assert len(stored.encode()) <= LOG_BYTES
    assert stored.startswith("[v6flow server] log truncated")
    assert stored.endswith("\n".join(lines[-10:]) + "\n")


def test_a_patched_log_keeps_its_tail(small_world: World) -> None:
    """The final report's whole log is cut to its tail too."""
    run_id, token = _running_run(small_world)
    log = "".join(f"row {i}\n" for i in range(5000))
    small_world.ok("PATCH", f"/run/{run_id}", token, json={"log": log, "status": "completed"})
    stored = small_world.ok("GET", f"/run/{run_id}")["log"]
    assert len(stored.encode()) <= LOG_BYTES and stored.endswith("row 4999\n")
