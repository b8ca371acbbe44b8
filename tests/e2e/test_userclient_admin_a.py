"""The unmodified vantage6-client 4.15.2 ``UserClient`` administers organizations,
collaborations, nodes and studies on a v6flow server.

Each test makes what it needs over REST (as root), drives one v4 client call in the reference
venv, and checks the outcome with an independent REST read, never with the client's own
answer alone. Refusals come back from the v4 client as the server's ``{"msg"}`` (it logs
them), so those tests read the server to see that nothing changed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.reference import ReferencePython
from tests.fixtures.server import ServerProcess
from tests.server.api.cast import (
    ids,
    listed,
    new_collaboration,
    new_node,
    new_organization,
    new_study,
    node_login,
    role_id,
)
from tests.server.conftest import World, build_world, unique

#: Runs in the reference venv: log in, then make each call ``[dotted.name, args, kwargs]``
#: on the UserClient; prints the list of answers as JSON.
DRIVER = """
import json, sys
from vantage6.client import UserClient

host, port, username, password, calls = sys.argv[1:6]
client = UserClient(host, int(port), "/api", log_level="critical")
client.authenticate(username, password)
client.setup_encryption(None)
answers = []
for dotted, args, kwargs in json.loads(calls):
    target = client
    for part in dotted.split("."):
        target = getattr(target, part)
    answers.append(target(*args, **kwargs))
print(json.dumps(answers))
"""


@dataclass(frozen=True)
class Person:
    """Credentials of a user the v4 client logs in with."""

    username: str
    password: str


@dataclass
class V4:
    """The v4 client against one server, and a REST world to prepare and check with."""

    python: ReferencePython
    world: World
    host: str
    port: str
    root: Person

    def calls(self, calls: list[tuple[str, list[Any], dict[str, Any]]],
              as_: Person | None = None) -> list[Any]:
        """Make the calls in one logged-in v4 client; their answers."""
        who = as_ or self.root
        answers = self.python.run_json(DRIVER, self.host, self.port, who.username, who.password,
                                       json.dumps(calls))
        assert isinstance(answers, list)
        return answers

    def call(self, dotted: str, *args: Any, as_: Person | None = None, **kwargs: Any) -> Any:
        """One call; its answer."""
        return self.calls([(dotted, list(args), kwargs)], as_=as_)[0]

    def person(self, organization_id: int, role: str) -> Person:
        """A new user of ``organization_id`` with a default role."""
        person = Person(unique("v4user"), secrets.token_urlsafe(12))
        self.world.ok("POST", "/user", json={
            "username": person.username, "password": person.password,
            "organization_id": organization_id, "roles": [role_id(self.world, role)]})
        return person


@pytest.fixture(scope="module")
def v4(server: ServerProcess, reference_client: ReferencePython) -> Iterator[V4]:
    """A fresh world on the session's server and the reference client."""
    url = urlsplit(server.url)
    yield V4(python=reference_client, world=build_world(server),
             host=f"{url.scheme}://{url.hostname}", port=str(url.port),
             root=Person("root", server.root_password))


def _status(world: World, path: str) -> int:
    return world.call("GET", path).status_code


# -- organization --------------------------------------------------------------------------


def test_organization_create(v4: V4) -> None:
    """``organization.create`` stores every field it sends."""
    fields: dict[str, Any] = {
        "name": unique("v4org"), "address1": "Street 1", "address2": "City",
        "zipcode": "1234 AB", "country": "NL", "domain": "example.org"}
    made = v4.call("organization.create", **fields)
    stored = v4.world.ok("GET", f"/organization/{made['id']}")
    assert {key: stored[key] for key in fields} == fields


def test_organization_get(v4: V4) -> None:
    """``organization.get`` answers what REST answers."""
    org = v4.world.org_ids[0]
    assert v4.call("organization.get", org) == v4.world.ok("GET", f"/organization/{org}")


def test_organization_list(v4: V4) -> None:
    """``organization.list`` with name, collaboration and study filters."""
    world = v4.world
    study = new_study(world, [world.org_ids[1]])
    name = world.ok("GET", f"/organization/{world.org_ids[0]}")["name"]
    by_name, by_collab, by_study = v4.calls([
        ("organization.list", [], {"name": name}),
        ("organization.list", [], {"collaboration": world.collaboration_id, "per_page": 100}),
        ("organization.list", [], {"study": study["id"]}),
    ])
    assert ids(by_name["data"]) == listed(world, "/organization", name=name)
    assert ids(by_collab["data"]) == sorted(world.org_ids)
    assert ids(by_study["data"]) == [world.org_ids[1]]


def test_organization_update(v4: V4) -> None:
    """``organization.update`` changes the fields given and keeps the others."""
    org = new_organization(v4.world)
    before = v4.world.ok("GET", f"/organization/{org}")
    v4.call("organization.update", org, country="BE", domain="example.be")
    after = v4.world.ok("GET", f"/organization/{org}")
    assert after == {**before, "country": "BE", "domain": "example.be"}


def test_organization_delete(v4: V4) -> None:
    """``organization.delete`` is refused while the organization has a node (the client's
    default ``delete_dependents=False``); with ``True`` it and its node are gone."""
    world = v4.world
    org = new_organization(world)
    node = new_node(world, new_collaboration(world, [org]), org)
    assert v4.call("organization.delete", org) is None
    assert world.ok("GET", f"/organization/{org}")["id"] == org
    v4.call("organization.delete", org, delete_dependents=True)
    assert _status(world, f"/organization/{org}") == 404
    assert node_login(world, node["api_key"]).status_code == 401


# -- collaboration -------------------------------------------------------------------------


def test_collaboration_create(v4: V4) -> None:
    """``collaboration.create`` makes it with the organizations given."""
    world = v4.world
    name = unique("v4collab")
    made = v4.call("collaboration.create", name, world.org_ids, encrypted=False)
    stored = world.ok("GET", f"/collaboration/{made['id']}")
    assert (stored["name"], stored["encrypted"]) == (name, False)
    assert listed(world, "/organization", collaboration_id=made["id"]) == sorted(world.org_ids)


def test_collaboration_get(v4: V4) -> None:
    """``collaboration.get`` answers what REST answers."""
    cid = v4.world.collaboration_id
    assert v4.call("collaboration.get", cid) == v4.world.ok("GET", f"/collaboration/{cid}")


def test_collaboration_list(v4: V4) -> None:
    """``collaboration.list`` (global scope) with organization and name filters."""
    world = v4.world
    by_org, by_name = v4.calls([
        ("collaboration.list", [], {"scope": "global", "organization": world.org_ids[0]}),
        ("collaboration.list", [], {"scope": "global", "name": world.ok(
            "GET", f"/collaboration/{world.collaboration_id}")["name"]}),
    ])
    assert ids(by_org["data"]) == listed(world, "/collaboration",
                                         organization_id=world.org_ids[0])
    assert ids(by_name["data"]) == [world.collaboration_id]


def test_collaboration_update(v4: V4) -> None:
    """``collaboration.update`` renames, sets ``encrypted`` and replaces the members."""
    world = v4.world
    a, b = world.org_ids
    collab = new_collaboration(world, [a])
    name = unique("v4renamed")
    v4.call("collaboration.update", collab, name=name, encrypted=True, organizations=[a, b])
    stored = world.ok("GET", f"/collaboration/{collab}")
    assert (stored["name"], stored["encrypted"]) == (name, True)
    assert listed(world, "/organization", collaboration_id=collab) == sorted([a, b])


def test_collaboration_delete(v4: V4) -> None:
    """``collaboration.delete`` is refused while it has a node; with dependents it goes."""
    world = v4.world
    collab = new_collaboration(world, [world.org_ids[0]])
    node = new_node(world, collab, world.org_ids[0])
    v4.call("collaboration.delete", collab)
    assert world.ok("GET", f"/collaboration/{collab}")["id"] == collab
    v4.call("collaboration.delete", collab, delete_dependents=True)
    assert _status(world, f"/collaboration/{collab}") == 404
    assert _status(world, f"/node/{node['id']}") == 404


def test_collaboration_add_organization(v4: V4) -> None:
    """``collaboration.add_organization`` answers the members; REST agrees; twice refused."""
    world = v4.world
    collab = new_collaboration(world, [world.org_ids[0]])
    members, twice = v4.calls([
        ("collaboration.add_organization", [world.outsider_id], {"collaboration": collab}),
        ("collaboration.add_organization", [world.outsider_id], {"collaboration": collab}),
    ])
    expected = sorted([world.org_ids[0], world.outsider_id])
    assert ids(members) == expected
    assert "already part" in twice["msg"]
    assert listed(world, "/organization", collaboration_id=collab) == expected


def test_collaboration_remove_organization(v4: V4) -> None:
    """``collaboration.remove_organization`` answers the members; REST agrees."""
    world = v4.world
    collab = new_collaboration(world, world.org_ids)
    members = v4.call("collaboration.remove_organization", world.org_ids[1],
                      collaboration=collab)
    assert ids(members) == [world.org_ids[0]]
    assert listed(world, "/organization", collaboration_id=collab) == [world.org_ids[0]]


# -- node ----------------------------------------------------------------------------------


def test_node_create(v4: V4) -> None:
    """``node.create`` registers it; the API key it answers logs the node in."""
    world = v4.world
    collab = new_collaboration(world, [world.outsider_id])
    name = unique("v4node")
    made = v4.call("node.create", collab, organization=world.outsider_id, name=name)
    stored = world.ok("GET", f"/node/{made['id']}")
    assert (stored["name"], stored["organization"]["id"], stored["collaboration"]["id"]) == (
        name, world.outsider_id, collab)
    assert node_login(world, made["api_key"]).status_code == 200


def test_node_get(v4: V4) -> None:
    """``node.get`` answers what REST answers."""
    node = v4.world.node_ids[v4.world.org_ids[0]]
    assert v4.call("node.get", node) == v4.world.ok("GET", f"/node/{node}")


def test_node_list(v4: V4) -> None:
    """``node.list`` with collaboration, organization, study and is_online filters."""
    world = v4.world
    a, b = world.org_ids
    study = new_study(world, [b])
    by_collab, by_org, by_study, offline = v4.calls([
        ("node.list", [], {"collaboration": world.collaboration_id}),
        ("node.list", [], {"organization": a, "collaboration": world.collaboration_id}),
        ("node.list", [], {"study": study["id"]}),
        ("node.list", [], {"collaboration": world.collaboration_id, "is_online": False}),
    ])
    assert ids(by_collab["data"]) == sorted(world.node_ids.values())
    assert ids(by_org["data"]) == [world.node_ids[a]]
    assert ids(by_study["data"]) == [world.node_ids[b]]
    assert ids(offline["data"]) == listed(world, "/node", collaboration_id=world.collaboration_id,
                                          status="offline")


def test_node_update(v4: V4) -> None:
    """``node.update`` renames and clears the VPN address."""
    world = v4.world
    node = new_node(world, new_collaboration(world, [world.outsider_id]), world.outsider_id)
    world.ok("PATCH", f"/node/{node['id']}", json={"ip": "10.1.2.3"})
    name = unique("v4renamed-node")
    v4.call("node.update", node["id"], name=name, clear_ip=True)
    stored = world.ok("GET", f"/node/{node['id']}")
    assert (stored["name"], stored["ip"]) == (name, None)


def test_node_delete(v4: V4) -> None:
    """``node.delete`` revokes the node at once: its live access token and its key are 401."""
    world = v4.world
    node = new_node(world, new_collaboration(world, [world.outsider_id]), world.outsider_id)
    token = node_login(world, node["api_key"]).json()["access_token"]
    assert world.call("GET", f"/node/{node['id']}", token).status_code == 200
    v4.call("node.delete", node["id"])
    assert world.call("GET", f"/node/{node['id']}", token).status_code == 401
    assert node_login(world, node["api_key"]).status_code == 401
    assert _status(world, f"/node/{node['id']}") == 404


# -- study ---------------------------------------------------------------------------------


def test_study_create(v4: V4) -> None:
    """``study.create`` makes it with the organizations given; outsiders are refused."""
    world = v4.world
    name = unique("v4study")
    made, refused = v4.calls([
        ("study.create", [name, [world.org_ids[0]]], {"collaboration": world.collaboration_id}),
        ("study.create", [unique("v4study"), [world.outsider_id]],
         {"collaboration": world.collaboration_id}),
    ])
    stored = world.ok("GET", f"/study/{made['id']}")
    assert (stored["name"], stored["collaboration"]["id"]) == (name, world.collaboration_id)
    assert listed(world, "/organization", study_id=made["id"]) == [world.org_ids[0]]
    assert str(world.outsider_id) in refused["msg"]


def test_study_get(v4: V4) -> None:
    """``study.get`` answers what REST answers."""
    study = new_study(v4.world, [v4.world.org_ids[0]])
    assert v4.call("study.get", study["id"]) == v4.world.ok("GET", f"/study/{study['id']}")


def test_study_list(v4: V4) -> None:
    """``study.list`` with name, organization, collaboration filters and organizations."""
    world = v4.world
    a, b = world.org_ids
    first, second = new_study(world, [a]), new_study(world, [b])
    by_name, by_org, by_collab = v4.calls([
        ("study.list", [], {"name": first["name"], "include_organizations": True}),
        ("study.list", [], {"organization": b, "per_page": 100}),
        ("study.list", [], {"collaboration": world.collaboration_id, "per_page": 100}),
    ])
    assert ids(by_name["data"]) == [first["id"]]
    assert ids(by_name["data"][0]["organizations"]) == [a]
    assert ids(by_org["data"]) == listed(world, "/study", organization_id=b)
    assert second["id"] in ids(by_org["data"]) and first["id"] not in ids(by_org["data"])
    assert ids(by_collab["data"]) == listed(world, "/study",
                                            collaboration_id=world.collaboration_id)


def test_study_update(v4: V4) -> None:
    """``study.update`` renames and replaces the organizations."""
    world = v4.world
    study = new_study(world, [world.org_ids[0]])
    name = unique("v4renamed-study")
    v4.call("study.update", study["id"], name=name, organizations=[world.org_ids[1]])
    assert world.ok("GET", f"/study/{study['id']}")["name"] == name
    assert listed(world, "/organization", study_id=study["id"]) == [world.org_ids[1]]


def test_study_add_organization(v4: V4) -> None:
    """``study.add_organization`` answers the members; REST agrees; outsiders refused."""
    world = v4.world
    study = new_study(world, [world.org_ids[0]])
    members, outsider = v4.calls([
        ("study.add_organization", [world.org_ids[1]], {"study": study["id"]}),
        ("study.add_organization", [world.outsider_id], {"study": study["id"]}),
    ])
    assert ids(members) == sorted(world.org_ids)
    assert str(world.outsider_id) in outsider["msg"]
    assert listed(world, "/organization", study_id=study["id"]) == sorted(world.org_ids)


def test_study_remove_organization(v4: V4) -> None:
    """``study.remove_organization`` answers the members; REST agrees."""
    world = v4.world
    study = new_study(world, world.org_ids)
    members = v4.call("study.remove_organization", world.org_ids[0], study=study["id"])
    assert ids(members) == [world.org_ids[1]]
    assert listed(world, "/organization", study_id=study["id"]) == [world.org_ids[1]]


def test_study_delete(v4: V4) -> None:
    """``study.delete`` removes it."""
    study = new_study(v4.world, [v4.world.org_ids[0]])
    v4.call("study.delete", study["id"])
    assert _status(v4.world, f"/study/{study['id']}") == 404


# -- task in a study, and a refusal ---------------------------------------------------------


def test_task_create_in_a_study(v4: V4) -> None:
    """``task.create(study=...)`` records the study (``task.list(study=)`` finds it); an
    organization outside the study is refused, naming it, and no task is made."""
    world = v4.world
    a, b = world.org_ids
    study = new_study(world, [a])
    researcher = v4.person(a, "Researcher")
    task_args = {"name": "in-study", "image": "v6flow-test/basic:latest", "description": "d",
                 "input_": {"method": "partial"}, "databases": [{"label": "default"}],
                 "study": study["id"]}
    made, refused, found = v4.calls([
        ("task.create", [], {**task_args, "organizations": [a]}),
        ("task.create", [], {**task_args, "organizations": [a, b]}),
        ("task.list", [], {"study": study["id"]}),
    ], as_=researcher)
    stored = world.ok("GET", f"/task/{made['id']}")
    assert stored["study"]["id"] == study["id"]
    assert stored["collaboration"]["id"] == world.collaboration_id
    assert f"[{b}]" in refused["msg"]
    assert ids(found["data"]) == [made["id"]]
    assert listed(world, "/task", study_id=study["id"]) == [made["id"]]


def test_viewer_is_refused_administration(v4: V4) -> None:
    """A Viewer's v4 client creates no study, renames no collaboration, deletes no node."""
    world = v4.world
    a = world.org_ids[0]
    viewer = v4.person(a, "Viewer")
    before = world.ok("GET", f"/collaboration/{world.collaboration_id}")
    studies = listed(world, "/study")
    answers = v4.calls([
        ("study.create", [unique("nope"), [a]], {"collaboration": world.collaboration_id}),
        ("collaboration.update", [world.collaboration_id], {"name": unique("nope")}),
        ("node.delete", [world.node_ids[a]], {}),
    ], as_=viewer)
    assert "permission" in answers[0]["msg"] and "permission" in answers[1]["msg"]
    assert world.ok("GET", f"/collaboration/{world.collaboration_id}") == before
    assert world.ok("GET", f"/node/{world.node_ids[a]}")["id"] == world.node_ids[a]
    assert listed(world, "/study") == studies
