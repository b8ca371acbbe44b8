"""Ports of runs (``/port``), peer addresses (``/vpn/algorithm/addresses``) and the relay's
rules at the server hop: only runs of one job are paired, on ports they registered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.server.conftest import World

same_loop = pytest.mark.asyncio(loop_scope="session")


def _run_of(world: World, task: dict[str, Any], org_id: int) -> dict[str, Any]:
    return next(r for r in world.runs(task["id"]) if r["organization"]["id"] == org_id)


def _started(world: World, org_ids: list[int] | None = None) -> tuple[dict[str, Any],
                                                                     dict[int, str]]:
    """A task at ``org_ids`` whose runs are started, and the container token of each."""
    task = world.create_task(org_ids)
    tokens = {oid: world.container_token(task, oid) for oid in (org_ids or world.org_ids)}
    return task, tokens


def _register(world: World, task: dict[str, Any], org_id: int, port: int,
              label: str | None = "exchange") -> dict[str, Any]:
    run = _run_of(world, task, org_id)
    body: dict[str, Any] = world.ok("POST", "/port", world.node_token(org_id),
                                    json={"port": port, "run_id": run["id"], "label": label})
    return body


# --- /port -------------------------------------------------------------------------------
def test_node_registers_lists_and_deletes_its_runs_ports(world: World) -> None:
    """POST /port answers v4's shape, the run lists its ports, DELETE removes them all."""
    # Prepare
    org = world.org_ids[0]
    task, _ = _started(world, [org])
    run_id = _run_of(world, task, org)["id"]
    node = world.node_token(org)
    # Execute
    created = [_register(world, task, org, port, label) for port, label in
               ((9000, "a"), (8888, None))]
    shown = world.ok("GET", f"/run/{run_id}")["ports"]
    listed = world.ok("GET", "/port", node, params={"run_id": run_id})["data"]
    deleted = world.ok("DELETE", "/port", node, params={"run_id": run_id})
    # Assert
    assert created[0] == {"id": created[0]["id"], "port": 9000, "label": "a",
                          "run": {"id": run_id, "link": f"/api/run/{run_id}",
                                  "methods": ["GET"]}}
    assert shown == [{"id": created[1]["id"], "port": 8888, "label": None},
                     {"id": created[0]["id"], "port": 9000, "label": "a"}]
    assert [p["port"] for p in listed] == [8888, 9000]
    assert deleted["deleted"] == 2
    assert world.ok("GET", f"/run/{run_id}")["ports"] == []


def test_ports_of_another_nodes_run_are_refused(world: World) -> None:
    """A node can neither register nor delete ports of another organization's run."""
    task, _ = _started(world, [world.org_ids[0]])
    run_id = _run_of(world, task, world.org_ids[0])["id"]
    other = world.node_token(world.org_ids[1])
    post = world.call("POST", "/port", other, json={"port": 8888, "run_id": run_id})
    delete = world.call("DELETE", "/port", other, params={"run_id": run_id})
    assert (post.status_code, delete.status_code) == (401, 401)


@pytest.mark.parametrize(("body", "field"), [
    ({"port": 0}, "port"), ({"port": 65536}, "port"), ({"port": "x"}, "port"),
    ({"port": 80, "run_id": 0}, "run_id"), ({"port": 80, "label": "x" * 129}, "label"),
])
def test_bad_port_bodies_name_the_field(world: World, body: dict[str, Any], field: str) -> None:
    """A wrong port, run id or label is a 400 that names the field."""
    task, _ = _started(world, [world.org_ids[0]])
    full = {"run_id": _run_of(world, task, world.org_ids[0])["id"], **body}
    response = world.call("POST", "/port", world.node_token(world.org_ids[0]), json=full)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_duplicate_port_and_finished_run_are_refused(world: World) -> None:
    """The same port twice is a 409; a finished run registers no port (400)."""
    org = world.org_ids[0]
    task, _ = _started(world, [org])
    run_id = _run_of(world, task, org)["id"]
    node = world.node_token(org)
    _register(world, task, org, 7000)
    again = world.call("POST", "/port", node, json={"port": 7000, "run_id": run_id})
    world.ok("PATCH", f"/run/{run_id}", node, json={
        "status": "completed", "finished_at": "2026-01-01T00:00:00.000000"})
    late = world.call("POST", "/port", node, json={"port": 7001, "run_id": run_id})
    assert (again.status_code, late.status_code) == (409, 400)


def test_users_and_containers_cannot_change_ports(world: World) -> None:
    """POST and DELETE /port are for nodes only (403 for users and containers)."""
    task, tokens = _started(world, [world.org_ids[0]])
    run_id = _run_of(world, task, world.org_ids[0])["id"]
    for token in (world.root_token, tokens[world.org_ids[0]]):
        assert world.call("POST", "/port", token,
                          json={"port": 1, "run_id": run_id}).status_code == 403
        assert world.call("DELETE", "/port", token,
                          params={"run_id": run_id}).status_code == 403


def test_delete_without_run_id_names_it(world: World) -> None:
    """DELETE /port needs run_id (400 naming it)."""
    response = world.call("DELETE", "/port", world.node_token(world.org_ids[0]))
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["run_id"]


# --- /vpn/algorithm/addresses ------------------------------------------------------------
def _addresses(world: World, token: str, **params: Any) -> list[tuple[int, int, str | None]]:
    body = world.ok("GET", "/vpn/algorithm/addresses", token, params=params)
    return sorted((a["organization_id"], a["port"], a["label"]) for a in body["addresses"])


def test_addresses_follow_v4_filters(world: World) -> None:
    """Default: own task's runs; only_siblings drops the caller's organization, only_self keeps
    only it; label filters; each address names its run, task and parent."""
    # Prepare
    a, b = world.org_ids
    task, tokens = _started(world, [a, b])
    _register(world, task, a, 8888)
    _register(world, task, b, 8888)
    _register(world, task, b, 9999, "other")
    # Execute
    everything = world.ok("GET", "/vpn/algorithm/addresses", tokens[a])["addresses"]
    # Assert
    assert sorted((x["organization_id"], x["port"]) for x in everything) == [
        (a, 8888), (b, 8888), (b, 9999)]
    runs = {r["organization"]["id"]: r["id"] for r in world.runs(task["id"])}
    assert all(x["task_id"] == task["id"] and x["parent_id"] is None
               and x["run_id"] == runs[x["organization_id"]] for x in everything)
    assert _addresses(world, tokens[a], only_siblings=1) == [(b, 8888, "exchange"),
                                                             (b, 9999, "other")]
    assert _addresses(world, tokens[a], only_self=1) == [(a, 8888, "exchange")]
    assert _addresses(world, tokens[a], label="other") == [(b, 9999, "other")]


def test_addresses_of_parent_and_children(world: World) -> None:
    """A subtask's container finds its parent (only_parent); the parent its children."""
    # Prepare: a central run at org a creates a subtask at a and b
    a, b = world.org_ids
    central, tokens = _started(world, [a])
    _register(world, central, a, 7000, "central")
    sub = world.ok("POST", "/task", tokens[a], json=world.task_body([a, b], name="sub"))
    sub_tokens = {oid: world.container_token(sub, oid) for oid in (a, b)}
    _register(world, sub, b, 8888)
    # Execute / Assert
    assert _addresses(world, sub_tokens[b], only_parent=1) == [(a, 7000, "central")]
    assert _addresses(world, tokens[a], only_children=1) == [(b, 8888, "exchange")]
    assert _addresses(world, tokens[a], include_children=1) == [(a, 7000, "central"),
                                                                (b, 8888, "exchange")]
    assert _addresses(world, sub_tokens[b], include_parent=1) == [(a, 7000, "central"),
                                                                  (b, 8888, "exchange")]
    assert _addresses(world, tokens[a], only_parent=1) == []  # a top-level task has none


def test_addresses_never_leave_the_job(world: World) -> None:
    """Ports of another job's runs are never shown, whatever the options."""
    a, b = world.org_ids
    mine, tokens = _started(world, [a])
    other, _ = _started(world, [a, b])
    _register(world, other, b, 8888)
    for options in ({}, {"include_children": 1}, {"include_parent": 1}, {"only_siblings": 1}):
        assert _addresses(world, tokens[a], **options) == [], options
    assert mine["job_id"] != other["job_id"]


def test_addresses_refuse_two_only_options(world: World) -> None:
    """Two only_* options are a 400 (v4's message); users and nodes get 403."""
    _task, tokens = _started(world, [world.org_ids[0]])
    response = world.call("GET", "/vpn/algorithm/addresses", tokens[world.org_ids[0]],
                          params={"only_self": 1, "only_parent": 1})
    assert response.status_code == 400 and "only specify one" in response.json()["msg"]
    for token in (world.root_token, world.node_token(world.org_ids[0])):
        assert world.call("GET", "/vpn/algorithm/addresses", token).status_code == 403


# --- the relay ---------------------------------------------------------------------------
def _ws(world: World, path: str) -> str:
    return world.url.replace("http://", "ws://", 1) + path


def _open(world: World, path: str, token: str) -> Any:
    return connect(_ws(world, path), additional_headers={"Authorization": f"Bearer {token}"},
                   compression=None, proxy=None, open_timeout=15)


async def _refusal(world: World, path: str, token: str) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as caught:
        async with _open(world, path, token):
            pass
    response = caught.value.response
    return response.status_code, json.loads(response.body or b"{}").get("msg", "")


async def _accept_next(world: World, listener: ClientConnection, token: str,
                       ) -> tuple[int, ClientConnection]:
    """What a listening node does: read one request, open the accept socket."""
    request = json.loads(await asyncio.wait_for(listener.recv(), timeout=10))
    accepted = await _open(world, f"/relay/accept/{request['conn']}", token)
    return int(request["port"]), accepted


@same_loop
async def test_relay_pairs_two_runs_of_one_job(world: World) -> None:
    """Bytes flow both ways between a dialling and a listening run; 'eof' and close pass."""
    # Prepare
    a, b = world.org_ids
    task, tokens = _started(world, [a, b])
    _register(world, task, b, 8888)
    target = _run_of(world, task, b)["id"]
    async with _open(world, "/relay/listen", tokens[b]) as listener:
        # Execute
        dial = asyncio.ensure_future(_open(world, f"/relay/dial?run_id={target}&port=8888",
                                           tokens[a]))
        port, accepted = await _accept_next(world, listener, tokens[b])
        dialled = await dial
        await dialled.send(b"ping" * 1000)
        got = await accepted.recv()
        await accepted.send(b"pong")
        await accepted.send("eof")
        back = [await dialled.recv(), await dialled.recv()]
        await dialled.close()
        await asyncio.wait_for(accepted.wait_closed(), timeout=10)
    # Assert
    assert port == 8888
    assert got == b"ping" * 1000
    assert back == [b"pong", "eof"]


@same_loop
async def test_relay_refuses_other_jobs_and_unregistered_ports(world: World) -> None:
    """Another job's run is 403, an unregistered port 404, a run nobody listens for 409,
    a user token 403 and a broken token 401."""
    a, b = world.org_ids
    task, tokens = _started(world, [a, b])
    other, other_tokens = _started(world, [a])
    _register(world, task, b, 8888)
    target = _run_of(world, task, b)["id"]
    dial = f"/relay/dial?run_id={target}&port="
    assert (await _refusal(world, dial + "8888", other_tokens[a]))[0] == 403
    assert (await _refusal(world, dial + "8889", tokens[a]))[0] == 404
    assert (await _refusal(world, dial + "8888", tokens[a]))[0] == 409  # not listening
    assert (await _refusal(world, dial + "8888", world.root_token))[0] == 403
    assert (await _refusal(world, dial + "8888", "not-a-token"))[0] == 401
    assert other["job_id"] != task["job_id"]


@same_loop
async def test_relay_accept_needs_the_dialled_runs_token(world: World) -> None:
    """Only the listening run's token can take a waiting connection (409 for another run)."""
    a, b = world.org_ids
    task, tokens = _started(world, [a, b])
    _register(world, task, b, 8888)
    target = _run_of(world, task, b)["id"]
    async with _open(world, "/relay/listen", tokens[b]) as listener:
        dial = asyncio.ensure_future(_open(world, f"/relay/dial?run_id={target}&port=8888",
                                           tokens[a]))
        request = json.loads(await asyncio.wait_for(listener.recv(), timeout=10))
        stolen = await _refusal(world, f"/relay/accept/{request['conn']}", tokens[a])
        await listener.send(json.dumps({"conn": request["conn"], "error": "nothing there"}))
        with pytest.raises(InvalidStatus) as refused:
            await dial
    assert stolen[0] == 409
    assert refused.value.response.status_code == 502
    assert b"nothing there" in (refused.value.response.body or b"")
