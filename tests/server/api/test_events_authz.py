"""Security review finding 1: the event stream shows exactly what REST shows, per role and org.

Every event names an object: ``new_task`` a task, ``run_update``/``algorithm_log`` a run,
``kill_containers`` the runs it lists. For users of each default role, in the initiating
organization, in another organization of the collaboration and in another collaboration,
the events a stream delivers must be exactly those whose object ``GET /task/<id>`` or
``GET /run/<id>`` answers 200 for the same user. The expectations are read from REST, after
the events, never written by hand.
"""

from __future__ import annotations

import queue
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.server.conftest import HTTP, World, login, unique
from tests.server.sse import EventStream

ROLES = ("Viewer", "Researcher", "Organization Admin", "Collaboration Admin")
RUN_EVENTS = ("run_update", "algorithm_log", "kill_containers")
#: After the last expected event arrived, how long a stream may still bring unexpected ones.
#: The bus hands an event to every subscriber's queue in one step, so by the time one stream
#: has the last event every stream's copy is queued: this only covers the socket.
GRACE = 1.0

Seen = tuple[str, int]  # (event name, task or run id)


@dataclass
class Watcher:
    """A user with an open event stream and what it received."""

    label: str
    token: str
    stream: EventStream
    received: set[Seen] = field(default_factory=set)

    def drain(self) -> None:
        """Move the queued events into ``received``."""
        while True:
            try:
                event = self.stream.events.get_nowait()
            except queue.Empty:
                return
            self.received |= _objects(event.name, event.data)


def _objects(name: str, data: Any) -> set[Seen]:
    if name == "new_task":
        return {(name, int(data["id"]))}
    if name in ("run_update", "algorithm_log"):
        return {(name, int(data["run_id"]))}
    if name == "kill_containers":
        return {(name, int(item["run_id"])) for item in data["kill_list"]}
    return set()


def _rest_sees(world: World, token: str, path: str) -> bool:
    status = world.call("GET", path, token).status_code
    assert status in (200, 403), (path, status)
    return status == 200


def _user(world: World, role: str, organization_id: int) -> str:
    """A new user with one default role; returns its token."""
    role_id = world.ok("GET", "/role", params={"name": role})["data"][0]["id"]
    username, password = unique(role.lower().replace(" ", "-")), secrets.token_urlsafe(12)
    world.ok("POST", "/user", json={"username": username, "password": password,
                                    "firstname": "F", "lastname": "L",
                                    "organization_id": organization_id, "roles": [role_id]})
    return login(world.url, username, password)


@pytest.fixture(scope="module")
def other_collaboration(world: World) -> int:
    """The world's outsider organization, in a collaboration of its own."""
    body = {"name": unique("collab"), "organization_ids": [world.outsider_id],
            "encrypted": False}
    response = HTTP.post(f"{world.url}/collaboration", json=body,
                         headers={"Authorization": f"Bearer {world.root_token}"})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
def watchers(world: World, other_collaboration: int,
             request: pytest.FixtureRequest) -> Iterator[list[Watcher]]:
    """Streams of the role under test: same org, other org, other collaboration (or root)."""
    role: str = request.param
    if role == "Root":
        tokens = {"root": world.root_token}
    else:
        orgs = {"same org": world.org_ids[0], "other org": world.org_ids[1],
                "other collaboration": world.outsider_id}
        tokens = {f"{role}, {where}": _user(world, role, org) for where, org in orgs.items()}
    with ExitStack() as stack:
        found = []
        for label, token in tokens.items():
            stream = stack.enter_context(EventStream(world.url, token))
            stream.next("sync")
            found.append(Watcher(label, token, stream))
        yield found


def _make_events(world: World) -> tuple[list[int], list[int]]:
    """Tasks of two initiating organizations, each run updated, logging and killed."""
    researcher_b = _user(world, "Researcher", world.org_ids[1])
    tasks = [world.create_task()]
    response = world.call("POST", "/task", researcher_b, json=world.task_body())
    assert response.status_code == 201, response.text
    tasks.append(response.json())
    runs = [run for task in tasks for run in world.runs(task["id"])]
    for run in runs:
        node = world.node_token(run["organization"]["id"])
        world.ok("PATCH", f"/run/{run['id']}", node, json={"status": "active"})
        world.ok("POST", f"/run/{run['id']}/log", node, json={"lines": ["a log line"]})
    for task in tasks:
        world.ok("POST", "/kill/task", json={"id": task["id"]})
    return [task["id"] for task in tasks], [run["id"] for run in runs]


def _expected(world: World, token: str, task_ids: list[int], run_ids: list[int]) -> set[Seen]:
    tasks = {("new_task", t) for t in task_ids if _rest_sees(world, token, f"/task/{t}")}
    runs = {(name, r) for r in run_ids if _rest_sees(world, token, f"/run/{r}")
            for name in RUN_EVENTS}
    return tasks | runs


@pytest.mark.parametrize("watchers", [*ROLES, "Root"], indirect=True)
def test_stream_delivers_exactly_what_rest_shows(world: World, watchers: list[Watcher]) -> None:
    """new_task, run_update, algorithm_log and kill_containers follow the REST VIEW rules."""
    task_ids, run_ids = _make_events(world)
    expected = {w.label: _expected(world, w.token, task_ids, run_ids) for w in watchers}
    end = time.monotonic() + 10
    while time.monotonic() < end:
        for watcher in watchers:
            watcher.drain()
        if all(expected[w.label] <= w.received for w in watchers):
            break
        time.sleep(0.05)
    time.sleep(GRACE)
    for watcher in watchers:
        watcher.drain()
    ours = {(name, i) for i in task_ids for name in ("new_task",)} | {
        (name, i) for i in run_ids for name in RUN_EVENTS}
    got = {w.label: w.received & ours for w in watchers}
    assert got == expected
    for watcher in watchers:  # nothing of other tests' objects either, unless REST shows it
        for name, object_id in watcher.received - ours:
            path = f"/task/{object_id}" if name == "new_task" else f"/run/{object_id}"
            assert _rest_sees(world, watcher.token, path), (watcher.label, name, object_id)


@pytest.mark.parametrize("role", ROLES)
def test_embedded_runs_and_results_follow_the_run_rule(world: World, role: str) -> None:
    """``GET /task/<id>?include=runs,results`` embeds only runs ``GET /run/<id>`` shows."""
    token = _user(world, role, world.org_ids[0])
    task = world.create_task()
    body = world.ok("GET", f"/task/{task['id']}", token, params={"include": ["runs", "results"]})
    shown = {r["id"] for r in world.runs(task["id"]) if _rest_sees(world, token, f"/run/{r['id']}")}
    assert {r["id"] for r in body["runs"]} == shown
    assert {r["id"] for r in body["results"]} == shown


def _statuses(watcher: Watcher, node_id: int) -> list[str]:
    """The ``node_status`` values of ``node_id`` this watcher's stream has delivered."""
    seen = []
    while True:
        try:
            event = watcher.stream.events.get_nowait()
        except queue.Empty:
            return seen
        if event.name == "node_status" and event.data["id"] == node_id:
            seen.append(event.data["status"])


@pytest.mark.parametrize("watchers", [*ROLES, "Root"], indirect=True)
def test_node_status_follows_the_node_rule(world: World, watchers: list[Watcher]) -> None:
    """A node coming online and going offline reaches exactly who may GET /node/<id>."""
    # Prepare: the node of the collaboration's second organization, offline
    org = world.org_ids[1]
    node_id = world.node_ids[org]
    # Execute: it opens its event stream, then closes it
    with EventStream(world.url, world.node_token(org)) as node_stream:
        node_stream.next("sync")
        assert world.ok("GET", f"/node/{node_id}")["status"] == "online"
    end = time.monotonic() + 10
    while world.ok("GET", f"/node/{node_id}")["status"] != "offline":
        assert time.monotonic() < end, "the node never went offline"
        time.sleep(0.05)
    time.sleep(GRACE)
    # Assert: the expectation is what REST answers each watcher
    for watcher in watchers:
        visible = _rest_sees(world, watcher.token, f"/node/{node_id}")
        expected = ["online", "offline"] if visible else []
        assert _statuses(watcher, node_id) == expected, watcher.label
