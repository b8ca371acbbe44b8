"""Requests per second of one server process: task creations, results fetches, node pickups.

Starts ``v6flow server start`` (one uvicorn process, log level ``info`` so the access log is
written as in production) on a fresh SQLite file and, with ``--postgres``, on a fresh
PostgreSQL database of the local cluster (``runuser -u postgres -- psql``). It creates two
organizations, a collaboration, a node per organization and a researcher, then measures, with
``--clients`` concurrent keep-alive connections (httpx, asyncio):

- ``GET /version`` (the floor: HTTP, middleware, no token, no database);
- ``POST /task`` of a 1-organization task (``--creates`` times): requests per second, the
  latency median/p95, and the server's CPU milliseconds per call (``/proc/<pid>/stat``: what
  one core could do if the load generator did not share the machine);
- ``GET /result?task_id=`` as the researcher, one request at a time (the client's results
  fetch): median/p95 milliseconds;
- ``GET /run?state=open&task_id=&node_id=&include=task,input`` as the node (what a node does
  when told about a new task): median/p95 milliseconds.

``cpu ms`` is the server process's CPU per call; ``db ms`` (PostgreSQL) the CPU of the
database backends serving it per call: on this 2-core machine both share the cores with the
load generator, so ``1000 / (cpu ms + db ms)`` is what the cores could do for the server.

    python benchmarks/server_throughput.py [--creates 2000] [--clients 16] [--postgres]
        [--profile OUT.svg] [--profile-phase create|result|pickup]

``--profile`` records one phase (``--profile-phase``, default the creates) with py-spy
(``pip install py-spy``; samples holding the GIL: CPU) into a flame graph (``.svg``) or
collapsed stacks (any other
suffix). Every row is printed with the machine's load average (``/proc/loadavg``) at its end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PG_ROLE = "v6flow_bench"
PG_PASSWORD = "v6flow_bench_pw"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load() -> str:
    """The 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-d", database, "-v",
                    "ON_ERROR_STOP=1", "-qtAc", sql], check=True, capture_output=True,
                   timeout=60)


def backend_pids(database: str) -> list[int]:
    """The PostgreSQL backend processes serving ``database``."""
    out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-qtAc",
                          f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return [int(line) for line in out.split() if line.isdigit()]


def postgres_database() -> tuple[str, Callable[[], None]]:
    """A fresh database in the local cluster; returns its URL and a function dropping it."""
    _psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_ROLE}') "
          f"THEN CREATE ROLE {PG_ROLE} LOGIN PASSWORD '{PG_PASSWORD}'; END IF; END $$;")
    name = f"v6flow_bench_{secrets.token_hex(4)}"
    _psql(f"CREATE DATABASE {name} OWNER {PG_ROLE}")
    return (f"postgresql+psycopg://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:5432/{name}",
            lambda: _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@dataclass
class Server:
    """A running server process."""

    process: subprocess.Popen[bytes]
    url: str
    password: str


def start_server(directory: Path, database_url: str) -> Server:
    """``v6flow server start`` on ``database_url``; waits for ``/api/health``."""
    port, password = free_port(), secrets.token_urlsafe(12)
    env = {k: v for k, v in os.environ.items() if not k.startswith("V6FLOW_SERVER_")}
    env.update(V6FLOW_SERVER_DATABASE_URL=database_url, V6FLOW_SERVER_ROOT_PASSWORD=password,
               V6FLOW_SERVER_LOG_LEVEL="info")
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(["v6flow", "server", "start", "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Server(process, url, password)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start; see {directory / 'server.log'}")


@dataclass
class World:
    """What the measurements need: tokens, ids and a task body."""

    researcher: str
    node: str
    node_id: int
    body: dict[str, Any]


def build_world(server: Server) -> World:
    """Two organizations in a collaboration, a node each, a researcher of the first."""
    with httpx.Client(base_url=server.url + "/", timeout=30) as http:
        root = http.post("token/user", json={"username": "root",
                                             "password": server.password}).json()
        http.headers["Authorization"] = f"Bearer {root['access_token']}"

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = http.post(path, json=body)
            response.raise_for_status()
            return dict(response.json())

        orgs = [post("organization", {"name": f"org-{i}"})["id"] for i in range(2)]
        collab = post("collaboration", {"name": "bench", "organization_ids": orgs})["id"]
        nodes = [post("node", {"collaboration_id": collab, "organization_id": org})
                 for org in orgs]
        role = http.get("role", params={"name": "Researcher"}).json()["data"][0]["id"]
        password = secrets.token_urlsafe(12)
        post("user", {"username": "researcher", "password": password, "firstname": "R",
                      "lastname": "S", "organization_id": orgs[0], "roles": [role]})
        researcher = http.post("token/user", json={"username": "researcher",
                                                   "password": password}).json()
        node = http.post("token/node", json={"api_key": nodes[0]["api_key"]}).json()
    raw = json.dumps({"method": "partial", "kwargs": {"x": 1}}).encode()
    body = {"name": "bench", "image": "v6flow-test/basic:latest", "description": "",
            "collaboration_id": collab,
            "organizations": [{"id": orgs[0], "input": base64.b64encode(raw).decode()}],
            "databases": [{"label": "default"}]}
    return World(researcher=researcher["access_token"], node=node["access_token"],
                 node_id=nodes[0]["id"], body=body)


@dataclass
class Phase:
    """Latencies of one phase and the server's (and database backends') CPU over it."""

    name: str
    latencies: list[float]
    wall: float
    server_cpu: float
    load: str
    database_cpu: float | None = None

    def row(self) -> str:
        """A table row."""
        lat = sorted(self.latencies)
        db = "" if self.database_cpu is None else f"{self.database_cpu / len(lat) * 1000:.2f}"
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        return (f"| {self.name:<46} | {len(lat):5d} | {len(lat) / self.wall:8.1f} | "
                f"{statistics.median(lat) * 1000:7.2f} | {p95 * 1000:7.2f} | "
                f"{self.server_cpu / len(lat) * 1000:7.2f} | {db:>7} | {self.load:>5} |")


async def run_phase(name: str, pid: int, total: int, clients: int,
                    call: Callable[[httpx.AsyncClient, int], Awaitable[None]],
                    url: str, database: str | None = None) -> Phase:
    """``total`` calls spread over ``clients`` connections, each client one at a time
    (``database``: also the CPU of the PostgreSQL backends serving it)."""
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url + "/", timeout=60, limits=limits) as http:

        async def worker() -> None:
            for index in counter:
                began = time.perf_counter()
                await call(http, index)
                latencies.append(time.perf_counter() - began)

        backends = {b: cpu_seconds(b) for b in backend_pids(database)} if database else {}
        cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall, cpu = time.perf_counter() - wall0, cpu_seconds(pid) - cpu0
        database_cpu = None
        if database:
            database_cpu = 0.0
            for backend in backend_pids(database):
                try:
                    database_cpu += cpu_seconds(backend) - backends.get(backend, 0.0)
                except OSError:
                    continue
    return Phase(name, latencies, wall, cpu, load(), database_cpu)


async def measure(server: Server, world: World, creates: int, clients: int,
                  profile: Path | None, profile_phase: str,
                  database: str | None = None) -> list[Phase]:
    """Warm up, then the three phases."""
    pid = server.process.pid
    user = {"Authorization": f"Bearer {world.researcher}"}
    node = {"Authorization": f"Bearer {world.node}"}
    task_ids: list[int] = []

    async def create(http: httpx.AsyncClient, _index: int) -> None:
        response = await http.post("task", json=world.body, headers=user)
        if response.status_code != 201:
            raise SystemExit(f"POST /task answered {response.status_code}: {response.text}")
        task_ids.append(response.json()["id"])

    async def results(http: httpx.AsyncClient, index: int) -> None:
        response = await http.get("result", params={"task_id": task_ids[index]}, headers=user)
        response.raise_for_status()

    async def pickup(http: httpx.AsyncClient, index: int) -> None:
        response = await http.get("run", headers=node, params={
            "state": "open", "task_id": task_ids[index], "node_id": world.node_id,
            "include": ["task", "input"]})
        response.raise_for_status()
        assert len(response.json()["data"]) == 1

    async def health(http: httpx.AsyncClient, _index: int) -> None:
        (await http.get("version")).raise_for_status()

    await run_phase("warm-up", pid, 200, clients, create, server.url)
    floor = await run_phase(f"GET /version (no token, no database), {clients} cl.", pid,
                            creates, clients, health, server.url)
    sample = min(500, creates)
    plan = [("create", f"POST /task (1 organization), {clients} clients", creates, clients,
             create),
            ("result", "GET /result?task_id= (researcher), 1 client", sample, 1, results),
            ("pickup", "GET /run?state=open&task_id=… (node), 1 client", sample, 1, pickup)]
    phases = [floor]
    for key, name, total, concurrency, call in plan:
        spy = None
        if profile is not None and key == profile_phase:
            kind = "flamegraph" if profile.suffix == ".svg" else "raw"  # raw: collapsed stacks
            spy = subprocess.Popen(["py-spy", "record", "-o", str(profile), "-p", str(pid),
                                    "-r", "200", "--nonblocking", "--gil", "-f", kind],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)
        phases.append(await run_phase(name, pid, total, concurrency, call, server.url,
                                      database))
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=60)
    return phases


def main() -> None:
    """Run the measurements on SQLite (and PostgreSQL) and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    parser.add_argument("--only-postgres", action="store_true")
    parser.add_argument("--profile", type=Path, help="py-spy profile of one phase")
    parser.add_argument("--profile-phase", choices=("create", "result", "pickup"),
                        default="create")
    options = parser.parse_args()
    backends = [] if options.only_postgres else ["sqlite"]
    if options.postgres or options.only_postgres:
        if shutil.which("runuser") is None:
            raise SystemExit("--postgres needs the local PostgreSQL cluster (runuser, psql)")
        backends.append("postgresql")
    lines = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="v6flow-throughput-") as folder:
            drop: Callable[[], None] = lambda: None  # noqa: E731
            database = None
            if backend == "sqlite":
                url = f"sqlite:///{folder}/server.sqlite"
            else:
                url, drop = postgres_database()
                database = url.rsplit("/", 1)[1]
            server = start_server(Path(folder), url)
            try:
                world = build_world(server)
                idle = rss_mb(server.process.pid)
                phases = asyncio.run(measure(server, world, options.creates, options.clients,
                                             options.profile, options.profile_phase,
                                             database))
                lines += [f"| {backend:<10} {p.row()}" for p in phases]
                lines.append(f"| {backend:<10} | server VmRSS: {idle:.0f} MB after start, "
                             f"{rss_mb(server.process.pid):.0f} MB after the phases |")
            finally:
                server.process.terminate()
                server.process.wait(timeout=30)
                drop()
    print(f"\n| {'database':<10} | {'what':<46} | calls |    per s | med ms  | p95 ms  "
          f"| cpu ms  | db ms   | load  |")
    print(f"|{'-' * 12}|{'-' * 48}|-------|----------|---------|---------|---------|---------"
          f"|-------|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
