"""Peak memory of the server under large request bodies and pages of large stored rows.

Starts ``v6flow server start`` on a fresh SQLite database and reads the peak resident memory
of that process (``VmHWM`` in ``/proc/<pid>/status``, reset before each request by writing
``5`` to ``/proc/<pid>/clear_refs``). For each request it prints the answer's status and
size and how far the peak rose above the memory the process held just before:

- a junk body of ``--junk-mb`` to ``POST /api/token/user`` (no token), announced by
  ``Content-Length``, and the same body chunked (no length);
- ``GET /api/run?per_page=1000`` over ``--tasks`` tasks whose two runs each carry an input
  of ``--input-mb`` (with and without ``include=input``);
- ``GET /api/result?per_page=1000`` after a node reported a result of ``--input-mb`` for
  every run of its organization, and ``GET /api/task?per_page=1000`` (plain, and with
  ``include=results``) over all of it.

    python benchmarks/server_memory.py [--junk-mb 100] [--tasks 8] [--input-mb 6]

Run it with ``PYTHONPATH`` at another checkout to measure that code (the junk and the data
are the same).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _procmem import PeakMeter, free_port

MB = 1024 * 1024


def send_junk(port: int, path: str, size: int, *, chunked: bool) -> tuple[int, int]:
    """POST ``size`` junk bytes (announced or chunked) while reading the answer at once.

    Returns:
        The status and the number of body bytes the server let through before answering.
    """
    sock = socket.create_connection(("127.0.0.1", port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"{framing}\r\n\r\n".encode())
    sent = 0
    block = b"x" * MB

    def write() -> None:
        nonlocal sent
        try:
            while sent < size:
                piece = block[:min(MB, size - sent)]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked
                             else piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed: the rest is not wanted
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    answer = b""
    sock.settimeout(120)
    while b"\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    writer.join(timeout=30)
    return int(answer.split(b" ", 2)[1]), sent


def start_server(directory: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A server on a fresh SQLite file; returns the process, its API URL and root's password."""
    port, password = free_port(), secrets.token_urlsafe(12)
    env = {k: v for k, v in os.environ.items() if not k.startswith("V6FLOW_SERVER_")}
    env.update(V6FLOW_SERVER_DATABASE_URL=f"sqlite:///{directory}/server.sqlite",
               V6FLOW_SERVER_ROOT_PASSWORD=password, V6FLOW_SERVER_LOG_LEVEL="warning")
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(["v6flow", "server", "start", "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url, password
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start; see " + str(directory / "server.log"))


def big_input(size: int) -> str:
    """A valid base64 JSON task input of about ``size`` bytes."""
    raw = json.dumps({"method": "echo", "kwargs": {"pad": "a" * int(size * 3 / 4)}})
    return base64.b64encode(raw.encode()).decode()


def populate(http: httpx.Client, tasks: int, input_size: int) -> tuple[str, list[int], int]:
    """Organizations, a collaboration, nodes, and ``tasks`` tasks with large inputs.

    Returns:
        A node access token, the ids of every run and the node's organization.
    """
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.post(path, json=body)
        response.raise_for_status()
        return dict(response.json())

    orgs = [post("organization", {"name": f"org-{i}-{secrets.token_hex(3)}"})["id"]
            for i in range(2)]
    own = http.get("organization", params={"name": "root"}).json()["data"][0]["id"]
    collab = post("collaboration", {"name": f"c-{secrets.token_hex(3)}",
                                    "organization_ids": [own, *orgs]})["id"]
    api_key = post("node", {"collaboration_id": collab, "organization_id": orgs[0]})["api_key"]
    post("node", {"collaboration_id": collab, "organization_id": orgs[1]})
    payload = big_input(input_size)
    for _ in range(tasks):
        post("task", {"image": "v6flow-test/basic:latest", "collaboration_id": collab,
                      "organizations": [{"id": org, "input": payload} for org in orgs]})
    node_token = http.post("token/node", json={"api_key": api_key}).json()["access_token"]
    run_ids = [r["id"] for r in http.get("run", params={"per_page": 1000}).json()["data"]]
    return node_token, run_ids, orgs[0]


def report_results(http: httpx.Client, node_token: str, run_ids: list[int],
                   size: int, node_org: int) -> None:
    """The node of the first organization reports a large result for each of its runs."""
    result = base64.b64encode(b"r" * int(size * 3 / 4)).decode()
    for run_id in run_ids:
        run = http.get(f"run/{run_id}").json()
        if run["organization"]["id"] != node_org:
            continue
        response = http.patch(f"run/{run_id}", json={"result": result, "status": "completed"},
                              headers={"Authorization": f"Bearer {node_token}"})
        response.raise_for_status()


Row = tuple[str, int, float, float, float, float]


def measured_get(http: httpx.Client, meter: PeakMeter, name: str, path: str,
                 params: dict[str, Any]) -> Row:
    """GET once; returns the table row (status, answer MB, seconds, growth and peak MB)."""
    meter.start()
    began = time.perf_counter()
    response = http.get(path, params=params)
    seconds = time.perf_counter() - began
    return (name, response.status_code, len(response.content) / MB, seconds,
            meter.growth_mb(), meter.peak_mb())


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--junk-mb", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--input-mb", type=float, default=6.0)
    options = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        process, url, password = start_server(Path(folder))
        try:
            meter = PeakMeter(process.pid)
            port = int(url.split(":")[2].split("/")[0])
            junk = options.junk_mb * MB
            for chunked in (False, True):
                meter.start()
                began = time.perf_counter()
                status, _sent = send_junk(port, "/api/token/user", junk, chunked=chunked)
                rows.append((f"POST /token/user {options.junk_mb} MB junk "
                             f"({'chunked' if chunked else 'Content-Length'})", status, 0.0,
                             time.perf_counter() - began, meter.growth_mb(), meter.peak_mb()))
            token = httpx.post(f"{url}/token/user", json={"username": "root",
                                                          "password": password}
                               ).json()["access_token"]
            with httpx.Client(base_url=url + "/", timeout=300,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                size = int(options.input_mb * MB)
                node_token, run_ids, node_org = populate(http, options.tasks, size)
                stored = len(run_ids) * options.input_mb
                rows.append(measured_get(
                    http, meter, f"GET /run?per_page=1000 ({stored:.0f} MB inputs)", "run",
                    {"per_page": 1000}))
                report_results(http, node_token, run_ids, size, node_org)
                rows.append(measured_get(
                    http, meter, f"GET /result?per_page=1000 ({stored / 2:.0f} MB results)",
                    "result", {"per_page": 1000}))
                rows.append(measured_get(
                    http, meter, f"GET /run?per_page=1000&include=input ({stored:.0f} MB)",
                    "run", {"per_page": 1000, "include": "input"}))
                rows.append(measured_get(
                    http, meter, "GET /task?per_page=1000 (over all of the above)", "task",
                    {"per_page": 1000}))
                rows.append(measured_get(
                    http, meter, "GET /task?per_page=1000&include=results", "task",
                    {"per_page": 1000, "include": "results"}))
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"| {'request':<58} | status | answer MB | seconds | peak growth MB | peak RSS MB |")
    print(f"|{'-' * 60}|--------|-----------|---------|----------------|-------------|")
    for name, status, answer, seconds, growth, peak in rows:
        print(f"| {name:<58} | {status:6d} | {answer:9.1f} | {seconds:7.2f} | {growth:14.1f} "
              f"| {peak:11.1f} |")


if __name__ == "__main__":
    main()
