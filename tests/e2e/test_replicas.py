"""Several server replicas on one PostgreSQL database behind a real load balancer (haproxy).

Three ``v6flow server start`` processes share one database and one JWT key; they start at
the same moment (the migrations must not race). haproxy has two entrances: ``nodes`` sends
new connections to replica 0 (backups: 2, then 1) and ``clients`` to replica 1 (backups: 2,
then 0), so the three real nodes stream from one replica while the researcher's client
creates tasks and waits on another: every event crosses replicas through the PostgreSQL
bus. Replicas are SIGKILLed mid-task; nodes and clients find a surviving replica through
haproxy by themselves, and each run ends exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.haproxy import Frontend, LoadBalancer, start_haproxy
from tests.fixtures.server import ServerProcess, free_port, start_server
from tests.server.sse import EventStream
from v6flow.client import AsyncClient, LogLines
from v6flow.client.federated import FanOutTracker, PartialRequest, run_partial
from v6flow.status import RunStatus
from v6flow_server.db.models import NodeStream

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.timeout(900)]

REPLICAS = 3
INTERVAL = 0.5  # presence heartbeat; a replica silent for 3 intervals is dead
OFFLINE_FAIL = 30.0
KEEPALIVE = 0.5
NODES = Frontend("nodes", primary=0, backups=(2, 1))
CLIENTS = Frontend("clients", primary=1, backups=(2, 0))


@dataclass
class Cluster:
    """The replicas, the load balancer, the federation and a view of the database."""

    replicas: list[ServerProcess]
    balancer: LoadBalancer
    federation: Federation
    engine: Engine
    env: dict[str, str]
    directory: Path

    def replica_name_prefix(self, index: int) -> str:
        """How replica ``index`` names itself in ``node_stream`` (host and process id)."""
        return f"{socket.gethostname()[:40]}-{self.replicas[index].process.pid}-"

    def stream_replicas(self) -> dict[int, set[str]]:
        """Node id → the replicas holding its stream rows."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(NodeStream.node_id, NodeStream.replica)).all()
        held: dict[int, set[str]] = {}
        for node_id, replica in rows:
            held.setdefault(node_id, set()).add(replica)
        return held

    def streams_on(self, index: int) -> bool:
        """Every node of the federation streams to replica ``index`` (and nowhere else)."""
        held = self.stream_replicas()
        prefix = self.replica_name_prefix(index)
        return all(len(held.get(n.node_id, ())) == 1
                   and next(iter(held[n.node_id])).startswith(prefix)
                   for n in self.federation.nodes)

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index`` (no shutdown: its rows and streams are just cut)."""
        process = self.replicas[index].process
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def restart(self, index: int) -> None:
        """Start replica ``index`` again on its port (haproxy takes it back in)."""
        old = self.replicas[index]
        self.replicas[index] = start_server(
            database_url=old.database_url, root_password=old.root_password,
            log_dir=self.directory / f"r{index}", port=old.port, extra_env=self.env)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")


def start_replicas(database_url: str, root_password: str, directory: Path,
                   env: dict[str, str]) -> list[ServerProcess]:
    """Start every replica at the same moment on the empty database."""
    ports = [free_port() for _ in range(REPLICAS)]
    with ThreadPoolExecutor(REPLICAS) as pool:
        futures = [pool.submit(start_server, database_url=database_url,
                               root_password=root_password, log_dir=directory / f"r{index}",
                               port=port, extra_env=env)
                   for index, port in enumerate(ports)]
        return [future.result() for future in futures]


@pytest.fixture(scope="module")
def cluster(postgres_databases: Callable[[], str], base_image: str, test_algorithm_image: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three replicas, haproxy, and a federation of three nodes entering through ``nodes``."""
    directory = tmp_path_factory.mktemp("replicas")
    database_url = postgres_databases()
    env = {"V6FLOW_SERVER_JWT_SECRET": secrets.token_urlsafe(32),
           "V6FLOW_SERVER_PRESENCE_INTERVAL_SECONDS": str(INTERVAL),
           "V6FLOW_SERVER_NODE_OFFLINE_FAIL_SECONDS": str(OFFLINE_FAIL),
           "V6FLOW_SERVER_KEEPALIVE_SECONDS": str(KEEPALIVE)}
    replicas = start_replicas(database_url, secrets.token_urlsafe(12), directory, env)
    balancer = start_haproxy(replica_ports=[r.port for r in replicas],
                             frontends=[NODES, CLIENTS], directory=directory / "haproxy",
                             keepalive_seconds=KEEPALIVE)
    engine = create_engine(database_url)
    cluster = None
    try:
        fed = create_federation(server_url=balancer.urls[NODES.name],
                                root_password=replicas[0].root_password,
                                directory=directory / "federation", base_image=base_image,
                                test_image=test_algorithm_image, sizes=(40, 30, 20))
        cluster = Cluster(replicas=replicas, balancer=balancer, federation=fed, engine=engine,
                          env=env, directory=directory)
        yield cluster
        shutdown_federation(fed)
    finally:
        balancer.stop()
        for replica in (cluster.replicas if cluster else replicas):
            replica.stop()
        engine.dispose()


def client(cluster: Cluster) -> AsyncClient:
    """The researcher's client, entering through ``clients``."""
    fed = cluster.federation
    return AsyncClient(cluster.balancer.urls[CLIENTS.name], username=fed.username,
                       password=fed.password)


def request(cluster: Cluster, seconds: float) -> PartialRequest:
    """A partial that sleeps ``seconds`` at each organization."""
    return PartialRequest(collaboration_id=cluster.federation.collaboration_id,
                          image=cluster.federation.test_image, method="sleep",
                          kwargs={"seconds": seconds}, databases=({"label": "default"},))


def containers_started(fed: Federation, run_id: int) -> int:
    """How many times the nodes started a container for run ``run_id`` (from their logs)."""
    count = 0
    for node in fed.nodes:
        for line in node.log_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "algorithm container started" and \
                    entry.get("run_id") == run_id:
                count += 1
    return count


def assert_each_run_once(fed: Federation, task_ids: list[int]) -> None:
    """Every task has one run, completed, whose container was started exactly once."""
    for task_id in task_ids:
        runs = fed.runs(task_id)
        assert len(runs) == 1, runs
        assert runs[0]["status"] == RunStatus.COMPLETED.value, runs[0]
        assert containers_started(fed, runs[0]["id"]) == 1, runs[0]


async def test_a_fan_out_completes_by_push_across_replicas(cluster: Cluster) -> None:
    """Nodes stream from replica 0, the client waits on replica 1: results and live logs come."""
    fed = cluster.federation
    assert cluster.streams_on(NODES.primary)
    logs: list[LogLines] = []
    # Execute: the fan-out, waiting by push (its log lines only ever come by push).
    async with client(cluster) as researcher:
        results = await asyncio.wait_for(
            run_partial(researcher, request(cluster, 0.5), fed.organization_ids,
                        on_log=logs.append), timeout=180)
    # Assert: each organization's result, and its container's log lines pushed across.
    assert results == dict.fromkeys(fed.organization_ids, 0.5)
    assert {batch.organization_id for batch in logs} == set(fed.organization_ids)
    assert all(any("calling" in line for batch in logs if batch.organization_id == org
                   for line in batch.lines) for org in fed.organization_ids)
    served = [parts[3] for parts in map(str.split, cluster.balancer.log_text().splitlines())
              if len(parts) > 3 and parts[2] == CLIENTS.name]
    assert served and set(served) == {f"{CLIENTS.name}_replicas/r{CLIENTS.primary}"}, served


async def fan_out_killing(cluster: Cluster, victim: int, seconds: float
                          ) -> tuple[dict[int, Any], list[int]]:
    """Run a fan-out through ``clients``; SIGKILL replica ``victim`` once every run is active.

    Returns:
        The fan-out's results and its server task ids.
    """
    fed = cluster.federation
    tracker = FanOutTracker()

    def all_active() -> bool:
        return len(tracker.task_ids) == len(fed.nodes) and all(
            fed.runs(task_id)[0]["status"] == "active" for task_id in list(tracker.task_ids))

    async with client(cluster) as researcher:
        fan_out = asyncio.ensure_future(run_partial(
            researcher, request(cluster, seconds), fed.organization_ids, tracker=tracker))
        await asyncio.to_thread(wait_until, all_active, 120, "every run active")
        cluster.kill(victim)
        results = await asyncio.wait_for(fan_out, timeout=180)
    return results, list(tracker.task_ids)


async def test_killing_the_nodes_replica_mid_task_loses_and_repeats_no_run(
        cluster: Cluster) -> None:
    """SIGKILL the nodes' replica while runs are active: nodes move on, each run ends once."""
    fed = cluster.federation
    # Execute: the replica every node streams from dies while their runs are active.
    results, task_ids = await fan_out_killing(cluster, NODES.primary, 8.0)
    # Assert: all results; each run ran once; the nodes now stream from the first backup.
    assert results == dict.fromkeys(fed.organization_ids, 8.0)
    assert_each_run_once(fed, task_ids)
    wait_until(lambda: cluster.streams_on(NODES.backups[0]), 30, "nodes on replica 2")
    assert all(fed.get(f"node/{n.node_id}")["status"] == "online" for n in fed.nodes)
    cluster.restart(NODES.primary)


async def test_killing_the_client_s_replica_mid_task_the_wait_still_ends(
        cluster: Cluster) -> None:
    """SIGKILL the replica the client waits on: it resubscribes elsewhere and gets results."""
    fed = cluster.federation
    results, task_ids = await fan_out_killing(cluster, CLIENTS.primary, 6.0)
    assert results == dict.fromkeys(fed.organization_ids, 6.0)
    assert_each_run_once(fed, task_ids)
    cluster.restart(CLIENTS.primary)


def test_a_starting_replica_marks_no_node_offline(cluster: Cluster) -> None:
    """A replica (re)starting leaves the nodes other replicas serve online, unannounced."""
    fed = cluster.federation
    node_ids = {n.node_id for n in fed.nodes}
    wait_until(lambda: all(fed.get(f"node/{n}")["status"] == "online" for n in node_ids), 30,
               "every node online")
    statuses: list[str] = []
    watching = threading.Event()
    watching.set()

    def watch_statuses() -> None:  # REST, as often as it answers, on a replica that stays up
        headers = {"Authorization": f"Bearer {fed.root_token()}"}
        while watching.is_set():
            page = httpx.get(f"{cluster.replicas[2].url}/node", headers=headers, params={
                "collaboration_id": fed.collaboration_id, "per_page": 100}).json()["data"]
            statuses.extend(n["status"] for n in page if n["id"] in node_ids)
            time.sleep(0.02)

    with EventStream(cluster.replicas[2].url, fed.root_token()) as events:
        events.next("sync", timeout=10)
        watcher = threading.Thread(target=watch_statuses, daemon=True)
        watcher.start()
        # Execute: replica 1 restarts (stops and starts again).
        cluster.replicas[1].stop()
        cluster.restart(1)
        time.sleep(4 * INTERVAL)
        watching.clear()
        watcher.join(timeout=10)
        announced = [e.data for e in _drain(events)
                     if e.name == "node_status" and e.data["id"] in node_ids]
    # Assert: every read said online, and no node_status was sent.
    assert statuses and set(statuses) == {"online"}, sorted(set(statuses))
    assert announced == []


def test_a_dead_replica_s_node_goes_offline_for_every_replica(cluster: Cluster) -> None:
    """A node's replica dies: another replica sweeps it offline and announces it everywhere."""
    fed = cluster.federation
    # Prepare: an extra node (own organization and collaboration) streaming to replica 0.
    token = fed.root_token()
    node = _extra_node(cluster, token)
    node_token = _node_token(cluster.replicas[0].url, node["api_key"])
    with EventStream(cluster.replicas[2].url, token) as watcher:
        watcher.next("sync", timeout=10)
        stream = EventStream(cluster.replicas[0].url, node_token)
        try:
            online = _next_status(watcher, node["id"])
            # Execute: replica 0 dies with the node's stream open.
            cluster.kill(0)
            killed_at = time.monotonic()
            offline = _next_status(watcher, node["id"], timeout=30)
        finally:
            stream.close()
    # Assert: online, then offline within a few heartbeats, and the REST view agrees.
    assert online["status"] == "online" and offline["status"] == "offline"
    assert time.monotonic() - killed_at < 10 * INTERVAL + 5
    assert fed.get(f"node/{node['id']}")["status"] == "offline"
    cluster.restart(0)


def test_a_stalled_replica_s_node_is_offline_until_the_replica_resumes(
        cluster: Cluster) -> None:
    """A replica frozen past the heartbeat window loses its node; resumed, it gets it back."""
    fed = cluster.federation
    token = fed.root_token()
    node = _extra_node(cluster, token)
    node_token = _node_token(cluster.replicas[0].url, node["api_key"])
    pid = cluster.replicas[0].process.pid
    with EventStream(cluster.replicas[2].url, token) as watcher:
        watcher.next("sync", timeout=10)
        stream = EventStream(cluster.replicas[0].url, node_token)
        try:
            assert _next_status(watcher, node["id"])["status"] == "online"
            # Execute: replica 0 freezes (its node's connection stays open), then resumes.
            os.kill(pid, signal.SIGSTOP)
            try:
                offline = _next_status(watcher, node["id"], timeout=30)
            finally:
                os.kill(pid, signal.SIGCONT)
            online = _next_status(watcher, node["id"], timeout=30)
        finally:
            stream.close()
    # Assert: swept offline while frozen; online again once its heartbeat wrote the row back.
    assert (offline["status"], online["status"]) == ("offline", "online")
    assert stream.status_code == 200


def _drain(stream: EventStream) -> list[Any]:
    events = []
    while not stream.events.empty():
        events.append(stream.events.get_nowait())
    return events


def _next_status(stream: EventStream, node_id: int, timeout: float = 10) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        event = stream.next("node_status", timeout=end - time.monotonic())
        if event.data["id"] == node_id:
            return dict(event.data)
    raise AssertionError(f"no node_status of node {node_id} within {timeout} s")


def _extra_node(cluster: Cluster, token: str) -> dict[str, Any]:
    url = cluster.replicas[2].url
    headers = {"Authorization": f"Bearer {token}"}
    suffix = secrets.token_hex(3)
    org = httpx.post(f"{url}/organization", json={"name": f"extra-{suffix}"},
                     headers=headers).json()
    collab = httpx.post(f"{url}/collaboration", headers=headers, json={
        "name": f"extra-{suffix}", "organization_ids": [org["id"]], "encrypted": False}).json()
    node = httpx.post(f"{url}/node", headers=headers, json={
        "organization_id": org["id"], "collaboration_id": collab["id"]})
    assert node.status_code == 201, node.text
    return dict(node.json())


def _node_token(url: str, api_key: str) -> str:
    response = httpx.post(f"{url}/token/node", json={"api_key": api_key})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_a_rate_limit_holds_across_replicas(postgres_databases: Callable[[], str],
                                            tmp_path: Path) -> None:
    """Logins naming one username, alternating between two replicas, share one budget."""
    # Prepare: two replicas on one database, N logins per username and minute.
    per_username = 6
    env = {"V6FLOW_SERVER_JWT_SECRET": secrets.token_urlsafe(32),
           "V6FLOW_SERVER_RATE_LIMIT_PER_USERNAME": f"{per_username}/minute"}
    database_url, password = postgres_databases(), secrets.token_urlsafe(12)
    pair = [start_server(database_url=database_url, root_password=password,
                         log_dir=tmp_path / f"r{index}", extra_env=env) for index in range(2)]
    try:
        # Execute: N wrong passwords, half on each replica, then one more.
        answers = [httpx.post(f"{pair[i % 2].url}/token/user", timeout=10,
                              json={"username": "nobody", "password": "wrong"}).status_code
                   for i in range(per_username + 1)]
    finally:
        for replica in pair:
            replica.stop()
    # Assert: N refusals as wrong credentials, then 429 (per replica it would be N/2 each).
    assert answers == [401] * per_username + [429]
