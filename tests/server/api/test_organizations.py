"""Organizations: edit rules, and deletion with and without its dependents (v4's pattern)."""

from __future__ import annotations

import pytest

from tests.fixtures.server import ServerProcess
from tests.server.api.cast import (
    Cast,
    build_cast,
    listed,
    new_collaboration,
    new_node,
    new_organization,
    new_study,
    node_login,
    status,
    user_token,
)
from tests.server.conftest import World, build_world


@pytest.fixture(scope="module")
def cast(api_server: ServerProcess) -> Cast:
    """Users of every default role, per backend."""
    return build_cast(api_server)


def test_update_reaches_own_organization_only(cast: Cast) -> None:
    """An Organization Admin edits its own organization, not a partner; a Viewer neither."""
    world = cast.world
    assert world.ok("PATCH", f"/organization/{cast.a}", cast.org_admin,
                    json={"country": "NL"})["country"] == "NL"
    assert status(world, "PATCH", f"/organization/{cast.b}", cast.org_admin,
                  json={"country": "BE"}) == 403
    assert status(world, "PATCH", f"/organization/{cast.a}", cast.viewer,
                  json={"country": "BE"}) == 403
    assert world.ok("GET", f"/organization/{cast.b}")["country"] != "BE"
    assert world.ok("GET", f"/organization/{cast.a}")["country"] == "NL"


def test_delete_without_dependents_removes_it(cast: Cast) -> None:
    """An organization nothing depends on is gone after one DELETE."""
    world = cast.world
    org = new_organization(world)
    response = world.call("DELETE", f"/organization/{org}")
    assert response.status_code == 200 and str(org) in response.json()["msg"]
    assert status(world, "GET", f"/organization/{org}", cast.root) == 404
    assert org not in listed(world, "/organization")


def test_delete_needs_the_global_rule(cast: Cast) -> None:
    """Only organization DELETE at global scope deletes: admins of every kind get 403."""
    world = cast.world
    org = new_organization(world)
    for token in (cast.viewer, cast.researcher, cast.org_admin, cast.collab_admin,
                  cast.outsider_admin, user_token(world, org, roles=["Collaboration Admin"])):
        assert status(world, "DELETE", f"/organization/{org}", token) == 403
    assert world.ok("GET", f"/organization/{org}")["id"] == org


def test_delete_own_organization_is_400(cast: Cast) -> None:
    """Nobody deletes the organization they belong to (root included)."""
    world = cast.world
    me = world.ok("GET", "/user", params={"username": "root"})["data"][0]
    response = world.call("DELETE", f"/organization/{me['organization']['id']}",
                          params={"delete_dependents": True})
    assert response.status_code == 400 and "own organization" in response.json()["msg"]
    assert status(world, "DELETE", "/organization/999999999", cast.root) == 404


def _organization_with_dependents(world: World) -> tuple[int, dict[str, object]]:
    """Organization D in a collaboration with A: a user, a node, a task it started, a run
    at it in A's task, a study membership. Returns D and what was made."""
    d = new_organization(world)
    collab = new_collaboration(world, [world.org_ids[0], d])
    node_a = new_node(world, collab, world.org_ids[0])
    node_d = new_node(world, collab, d)
    study = new_study(world, [d], collaboration_id=collab)
    d_researcher = user_token(world, d, roles=["Researcher"])
    a_researcher = user_token(world, world.org_ids[0], roles=["Researcher"])
    own_task = world.ok("POST", "/task", d_researcher, json=world.task_body(
        [d], collaboration_id=collab))
    a_task = world.ok("POST", "/task", a_researcher, json=world.task_body(
        [world.org_ids[0], d], collaboration_id=collab))
    return d, {"collab": collab, "node_a": node_a, "node_d": node_d, "study": study,
               "d_researcher": d_researcher, "own_task": own_task, "a_task": a_task}


def test_delete_with_dependents_is_400_naming_them(api_server: ServerProcess) -> None:
    """Users, nodes, tasks, runs and memberships are named; ``False`` (the v4 client's
    default, sent as text) refuses too, unlike v4, which read any text as true."""
    world = build_world(api_server)
    d, _ = _organization_with_dependents(world)
    for params in ({}, {"delete_dependents": "False"}, {"delete_dependents": "false"}):
        response = world.call("DELETE", f"/organization/{d}", params=params)
        assert response.status_code == 400, params
        msg = response.json()["msg"]
        for named in ("1 user,", "1 node,", "1 task,", "2 runs,",
                      "1 collaboration membership,", "1 study membership."):
            assert named in msg, (named, msg)
    assert world.ok("GET", f"/organization/{d}")["id"] == d


def test_delete_dependents_removes_them_and_revokes_nodes(api_server: ServerProcess) -> None:
    """Its users, nodes, own tasks and runs go; the collaboration, the study, A's task (minus
    the run at D) and A's node stay; D's node key and user token stop working."""
    world = build_world(api_server)
    d, made = _organization_with_dependents(world)
    node_d, node_a = made["node_d"], made["node_a"]
    assert isinstance(node_d, dict) and isinstance(node_a, dict)
    own_task, a_task = made["own_task"], made["a_task"]
    assert isinstance(own_task, dict) and isinstance(a_task, dict)
    response = world.call("DELETE", f"/organization/{d}", params={"delete_dependents": True})
    assert response.status_code == 200, response.text
    assert status(world, "GET", f"/organization/{d}", world.root_token) == 404
    assert status(world, "GET", f"/node/{node_d['id']}", world.root_token) == 404
    assert node_login(world, node_d["api_key"]).status_code == 401
    assert node_login(world, node_a["api_key"]).status_code == 200
    assert status(world, "GET", "/organization", str(made["d_researcher"])) == 401
    assert status(world, "GET", f"/task/{own_task['id']}", world.root_token) == 404
    runs = world.runs(a_task["id"])
    assert [r["organization"]["id"] for r in runs] == [world.org_ids[0]]
    assert listed(world, "/organization", collaboration_id=made["collab"]) == [world.org_ids[0]]
    study = made["study"]
    assert isinstance(study, dict)
    assert listed(world, "/organization", study_id=study["id"]) == []
    assert listed(world, "/user", organization_id=d) == []
