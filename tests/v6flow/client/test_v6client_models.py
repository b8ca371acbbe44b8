"""Every client answer is a response model of v6flow.schemas holding exactly the server's JSON."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from tests.v6flow.client.conftest import World
from v6flow import wire
from v6flow._sse import Event
from v6flow.client import AsyncClient, Client
from v6flow.client._auth import token_subject
from v6flow.client._resources import SubClients, operation
from v6flow.schemas import (
    PAYLOADS,
    CollaborationOut,
    EventName,
    NodeCreatedOut,
    NodeOut,
    OrganizationOut,
    ResultOut,
    RoleOut,
    RunOut,
    TaskOut,
    UserOut,
)
from v6flow.status import RunStatus

IMAGE = "v6flow-test/hand:latest"


def _dump(answer: Any) -> Any:
    """What a parsed answer says, as JSON: only the keys the server sent (unset left out)."""
    if isinstance(answer, list):
        return [_dump(item) for item in answer]
    assert isinstance(answer, BaseModel)
    return answer.model_dump(mode="json", exclude_unset=True)


@pytest.fixture(scope="module")
def raw(server: Any, root: Client) -> Iterator[Callable[..., Any]]:
    """``raw(path, **params)``: the server's own JSON for a GET, as root, asserting 200."""
    root.login()
    http = httpx.Client(base_url=server.url + "/", timeout=30,
                        headers={"Authorization": f"Bearer {root.auth.access_token}"})

    def get(path: str, **params: Any) -> Any:
        response = http.get(path, params={**params, "per_page": 100} if params else None)
        assert response.status_code == 200, response.text
        body = response.json()
        return body["data"] if params and "data" in body else body

    yield get
    http.close()


@pytest.fixture(scope="module")
def finished_task(researcher: Client, world: World) -> TaskOut:
    """A task of the world whose runs both finished with a result (via the hand nodes)."""
    task = researcher.task.create(world.collaboration_id, world.organization_ids, IMAGE, "echo",
                            kwargs={"x": 1})
    for org, node in world.nodes.items():
        node.finish(int(node.runs_of(task.id)[0]["id"]), {"org": org})
    return task


READS: dict[str, tuple[type[BaseModel], Callable[[Client, World, TaskOut], Any],
                       Callable[[World, TaskOut], tuple[str, dict[str, Any]]]]] = {
    "organization.list": (OrganizationOut,
                          lambda c, w, _t: c.organization.list(collaboration_id=w.collaboration_id),
                          lambda w, _t: ("organization", {"collaboration_id": w.collaboration_id})),
    "organization.get": (OrganizationOut,
                         lambda c, w, _t: c.organization.get(w.organization_ids[0]),
                         lambda w, _t: (f"organization/{w.organization_ids[0]}", {})),
    "collaboration.list": (CollaborationOut,
                           lambda c, w, _t: c.collaboration.list(
                               organization_id=w.organization_ids[1]),
                           lambda w, _t: ("collaboration",
                                          {"organization_id": w.organization_ids[1]})),
    "collaboration.get": (CollaborationOut,
                          lambda c, w, _t: c.collaboration.get(w.collaboration_id),
                          lambda w, _t: (f"collaboration/{w.collaboration_id}", {})),
    "node.list": (NodeOut, lambda c, w, _t: c.node.list(collaboration_id=w.collaboration_id),
                  lambda w, _t: ("node", {"collaboration_id": w.collaboration_id})),
    "user.list": (UserOut, lambda c, w, _t: c.user.list(organization_id=w.organization_ids[0]),
                  lambda w, _t: ("user", {"organization_id": w.organization_ids[0]})),
    "role.list": (RoleOut, lambda c, _w, _t: c.role.list(name="Researcher"),
                  lambda _w, _t: ("role", {"name": "Researcher"})),
    "task.get": (TaskOut, lambda c, _w, t: c.task.get(t.id, include_results=True),
                 lambda _w, t: (f"task/{t.id}", {"include": "results"})),
    "task.list": (TaskOut, lambda c, w, _t: c.task.list(collaboration_id=w.collaboration_id),
                  lambda w, _t: ("task", {"collaboration_id": w.collaboration_id})),
    "run.list": (RunOut, lambda c, _w, t: c.run.list(task_id=t.id),
                 lambda _w, t: ("run", {"task_id": t.id})),
    "result.list": (ResultOut, lambda c, _w, t: c.result.list(task_id=t.id),
                    lambda _w, t: ("result", {"task_id": t.id})),
}


@pytest.mark.parametrize("operation_name", sorted(READS))
def test_reads_parse_into_models_equal_to_the_raw_json(
        operation_name: str, root: Client, world: World, finished_task: TaskOut,
        raw: Callable[..., Any]) -> None:
    """Each read answers its response model(s), field for field the server's JSON."""
    # Prepare
    model, call, request = READS[operation_name]
    path, params = request(world, finished_task)
    # Execute
    answer = call(root, world, finished_task)
    # Assert
    items = answer if isinstance(answer, list) else [answer]
    assert items and all(type(item) is model for item in items)
    assert _dump(answer) == raw(path, **params)


def test_single_reads_by_id_equal_the_raw_json(root: Client, world: World,
                                               finished_task: TaskOut,
                                               raw: Callable[..., Any]) -> None:
    """node/user/role/run/result ``get`` answer the model of the object ``GET /x/<id>`` sends."""
    # Prepare
    node = root.node.list(collaboration_id=world.collaboration_id)[0]
    role = root.role.list(name="Researcher")[0]
    run = root.run.list(task_id=finished_task.id)[0]
    me_id = int(token_subject(str(root.auth.access_token)))
    # Execute
    answers = {f"node/{node.id}": root.node.get(node.id), f"role/{role.id}": root.role.get(role.id),
               f"user/{me_id}": root.user.get(me_id), f"run/{run.id}": root.run.get(run.id),
               f"result/{run.id}": root.result.get(run.id)}
    # Assert
    assert isinstance(root.run.get(run.id, include_task=True).task, TaskOut)
    assert _dump(root.user.get()) == _dump(root.whoami()) == raw(f"user/{me_id}")
    for path, answer in answers.items():
        assert _dump(answer) == raw(path), path


def test_creates_send_request_models_and_answer_what_the_server_stores(
        root: Client, world: World, raw: Callable[..., Any]) -> None:
    """organization/collaboration/node/user ``create`` answer the model a GET reads back."""
    # Prepare
    tag = uuid.uuid4().hex[:8]
    # Execute
    org = root.organization.create(f"org-{tag}", country="NL", zipcode="1234")
    collaboration = root.collaboration.create(f"collab-{tag}", [org.id])
    node = root.node.create(collaboration.id, org.id, name=f"node-{tag}")
    user = root.user.create(f"user-{tag}", f"Pw-{uuid.uuid4().hex}", org.id)
    # Assert
    assert isinstance(node, NodeCreatedOut) and uuid.UUID(node.api_key)
    assert _dump(org) == raw(f"organization/{org.id}")
    assert org.country == "NL" and org.zipcode == "1234"
    assert _dump(collaboration) == raw(f"collaboration/{collaboration.id}")
    assert _dump(NodeOut.model_validate(_dump(node))) == raw(f"node/{node.id}")
    assert _dump(user) == raw(f"user/{user.id}")
    assert user.organization.id == org.id and user.username == f"user-{tag}"


def test_task_create_status_kill_and_delete_are_typed(researcher: Client, world: World,
                                                     raw: Callable[..., Any]) -> None:
    """create answers the TaskOut a GET reads; status is the raw status; kill names the runs."""
    # Prepare
    args, kwargs = [1, "two"], {"three": 3.0}
    # Execute
    task = researcher.task.create(world.collaboration_id, world.organization_ids, IMAGE,
                                  "echo", args=args, kwargs=kwargs,
                                  name=f"typed-{uuid.uuid4().hex[:6]}")
    task_raw = raw(f"task/{task.id}")
    status = researcher.task.status(task.id)
    status_raw = raw(f"task/{task.id}/status")
    runs = researcher.run.list(task_id=task.id, include_input=True)
    killed = researcher.task.kill(task.id)
    researcher.task.delete(task.id)
    # Assert
    assert _dump(task) == task_raw
    assert status is RunStatus(status_raw["status"])
    assert all(wire.input_from_wire(r.input or "") == wire.make_input("echo", args, kwargs)
               for r in runs)
    assert {(k.run_id, k.organization_id) for k in killed.kill_list} == {
        (r.id, r.organization.id) for r in runs}
    remaining = researcher.task.list(collaboration_id=world.collaboration_id)
    assert task.id not in {t.id for t in remaining}


def test_result_from_task_decodes_each_organizations_result(
        root: Client, world: World, finished_task: TaskOut, raw: Callable[..., Any]) -> None:
    """from_task maps each run's organization to its decoded result, as the raw JSON says."""
    # Prepare
    org_of_run = {r["id"]: r["organization"]["id"] for r in raw("run", task_id=finished_task.id)}
    expected = {org_of_run[item["run"]["id"]]: wire.result_from_wire(item["result"])
                for item in raw("result", task_id=finished_task.id)}
    # Execute
    results = root.result.from_task(finished_task.id)
    # Assert
    assert results == expected == {org: {"org": org} for org in world.organization_ids}


def test_every_event_the_server_pushes_fits_its_payload_model(
        root: Client, researcher: Client, world: World) -> None:
    """sync, new_task, algorithm_log, run_update, kill_containers and node_status parse into
    their models."""
    # Prepare
    org = world.organization_ids[0]
    node = world.nodes[org]
    seen: dict[str, Event] = {}
    # Execute
    events = root.events()
    try:
        for event in events:
            if event is None:
                continue
            seen.setdefault(event.name, event)
            if event.name == EventName.SYNC:
                task = researcher.task.create(world.collaboration_id, [org], IMAGE, "echo")
                run_id = int(node.runs_of(task.id)[0]["id"])
                node.log(run_id, ["a line"])
                researcher.task.kill(task.id)
                node.connect_briefly()
            if set(PAYLOADS) <= set(seen):
                break
    finally:
        events.close()
    # Assert
    assert set(seen) >= set(PAYLOADS)
    for name, model in PAYLOADS.items():
        assert isinstance(seen[name].payload, model), seen[name]


def test_both_clients_have_the_same_sub_clients_and_operations() -> None:
    """Client and AsyncClient expose the same sub-clients, operations and signatures."""
    # Prepare
    sync = Client("http://127.0.0.1:9/api", token="t")
    asynchronous = AsyncClient("http://127.0.0.1:9/api", token="t")
    names = sorted(inspect.get_annotations(SubClients))

    def operations(client: Any) -> dict[str, dict[str, inspect.Signature]]:
        return {name: {op: inspect.signature(getattr(getattr(client, name), op))
                       for op, value in vars(type(getattr(client, name))).items()
                       if isinstance(value, operation)}
                for name in names}

    # Execute
    sync_ops, async_ops = operations(sync), operations(asynchronous)
    # Assert
    assert names == ["collaboration", "node", "organization", "result", "role", "run", "task",
                     "user"]
    assert sync_ops == async_ops
    assert all(sync_ops.values())
    shared = {"login", "whoami", "drive", "request", "events", "wait_for_task", "task_logs"}
    assert all(callable(getattr(c, m)) for c in (sync, asynchronous) for m in shared)
    sync.close()
