"""Collaborations: edits, member organizations, and deletion with its dependents."""

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
)
from tests.server.conftest import build_world


@pytest.fixture(scope="module")
def cast(api_server: ServerProcess) -> Cast:
    """Users of every default role, per backend."""
    return build_cast(api_server)


def test_collaboration_admin_renames_and_sets_encrypted(cast: Cast) -> None:
    """PATCH changes only the keys sent; GET answers the new values."""
    world = cast.world
    collab = new_collaboration(world, [cast.a, cast.b])
    name = f"renamed-{collab}"
    answer = world.ok("PATCH", f"/collaboration/{collab}", cast.collab_admin,
                      json={"name": name})
    assert answer["name"] == name and answer["encrypted"] is False
    world.ok("PATCH", f"/collaboration/{collab}", cast.collab_admin, json={"encrypted": True})
    assert world.ok("GET", f"/collaboration/{collab}") == {**answer, "encrypted": True}
    assert listed(world, "/organization", collaboration_id=collab) == sorted([cast.a, cast.b])


def test_update_refuses_outsiders_and_lower_roles(cast: Cast) -> None:
    """Other collaborations' admins, Organization Admins, Researchers, Viewers: 403."""
    world = cast.world
    collab = new_collaboration(world, [cast.a, cast.b])
    before = world.ok("GET", f"/collaboration/{collab}")
    for token in (cast.outsider_admin, cast.org_admin, cast.partner_admin, cast.researcher,
                  cast.viewer):
        assert status(world, "PATCH", f"/collaboration/{collab}", token,
                      json={"name": f"x-{collab}"}) == 403
    assert world.ok("GET", f"/collaboration/{collab}") == before
    assert status(world, "PATCH", "/collaboration/999999999", cast.root, json={}) == 404


def test_update_name_taken_is_400(cast: Cast) -> None:
    """Collaboration names are unique."""
    world = cast.world
    collab = new_collaboration(world, [cast.a])
    taken = world.ok("GET", f"/collaboration/{world.collaboration_id}")["name"]
    response = world.call("PATCH", f"/collaboration/{collab}", json={"name": taken})
    assert response.status_code == 400 and taken in response.json()["msg"]


def test_replacing_members_needs_the_global_rule(cast: Cast) -> None:
    """A Collaboration Admin may not change who is in it (an escalation); root may."""
    world = cast.world
    collab = new_collaboration(world, [cast.a])
    refused = world.call("PATCH", f"/collaboration/{collab}", cast.collab_admin,
                         json={"organization_ids": [cast.a, cast.x]})
    assert refused.status_code == 403
    assert listed(world, "/organization", collaboration_id=collab) == [cast.a]
    world.ok("PATCH", f"/collaboration/{collab}", json={"organization_ids": [cast.b, cast.x]})
    assert listed(world, "/organization", collaboration_id=collab) == sorted([cast.b, cast.x])
    repeated = world.call("PATCH", f"/collaboration/{collab}",
                          json={"organization_ids": [cast.b, cast.b]})
    assert repeated.status_code == 400 and "unique" in repeated.json()["errors"][0]["msg"]
    assert status(world, "PATCH", f"/collaboration/{collab}", cast.root,
                  json={"organization_ids": [999999999]}) == 404


def test_add_and_remove_organization(cast: Cast) -> None:
    """POST/DELETE /collaboration/<id>/organization answer the members; twice is 400."""
    world = cast.world
    collab = new_collaboration(world, [cast.a])
    path = f"/collaboration/{collab}/organization"
    added = world.ok("POST", path, json={"id": cast.x})
    assert [o["id"] for o in added] == sorted([cast.a, cast.x])
    assert listed(world, "/organization", collaboration_id=collab) == sorted([cast.a, cast.x])
    twice = world.call("POST", path, json={"id": cast.x})
    assert twice.status_code == 400 and "already part" in twice.json()["msg"]
    removed = world.ok("DELETE", path, json={"id": cast.x})
    assert [o["id"] for o in removed] == [cast.a]
    assert listed(world, "/organization", collaboration_id=collab) == [cast.a]
    again = world.call("DELETE", path, json={"id": cast.x})
    assert again.status_code == 400 and "not part" in again.json()["msg"]
    assert status(world, "POST", path, cast.root, json={"id": 999999999}) == 404
    assert status(world, "POST", "/collaboration/999999999/organization", cast.root,
                  json={"id": cast.x}) == 404
    assert status(world, "POST", path, cast.root, json={}) == 400


def test_membership_routes_need_the_global_rule(cast: Cast) -> None:
    """Even the collaboration's own admin gets 403 adding or removing members."""
    world = cast.world
    collab = new_collaboration(world, [cast.a, cast.b])
    path = f"/collaboration/{collab}/organization"
    for token in (cast.collab_admin, cast.outsider_admin, cast.org_admin, cast.viewer):
        assert status(world, "POST", path, token, json={"id": cast.x}) == 403
        assert status(world, "DELETE", path, token, json={"id": cast.b}) == 403
    assert listed(world, "/organization", collaboration_id=collab) == sorted([cast.a, cast.b])


def test_member_with_a_node_cannot_leave(cast: Cast) -> None:
    """Removing an organization that still has a node there is 400 naming the node."""
    world = cast.world
    collab = new_collaboration(world, [cast.a, cast.b])
    node = new_node(world, collab, cast.b)
    response = world.call("DELETE", f"/collaboration/{collab}/organization",
                          json={"id": cast.b})
    assert response.status_code == 400 and f"node id={node['id']}" in response.json()["msg"]
    patch = world.call("PATCH", f"/collaboration/{collab}", json={"organization_ids": [cast.a]})
    assert patch.status_code == 400 and f"node id={node['id']}" in patch.json()["msg"]
    assert listed(world, "/organization", collaboration_id=collab) == sorted([cast.a, cast.b])


def test_leaving_ends_study_membership_and_keeps_tasks(api_server: ServerProcess) -> None:
    """Once its node is deleted B may leave: it leaves the studies too; tasks stay intact."""
    world = build_world(api_server)
    a, b = world.org_ids
    study = new_study(world, [a, b])
    task = world.create_task([a, b])
    world.ok("DELETE", f"/node/{world.node_ids[b]}")
    world.ok("DELETE", f"/collaboration/{world.collaboration_id}/organization", json={"id": b})
    assert listed(world, "/organization", study_id=study["id"]) == [a]
    assert sorted(r["organization"]["id"] for r in world.runs(task["id"])) == sorted([a, b])
    assert world.ok("GET", f"/task/{task['id']}")["collaboration"]["id"] == \
        world.collaboration_id


def test_delete_with_dependents_is_400_naming_them(api_server: ServerProcess) -> None:
    """Tasks, nodes and studies are named with their numbers; it stays."""
    world = build_world(api_server)
    new_study(world, [world.org_ids[0]])
    world.create_task()
    response = world.call("DELETE", f"/collaboration/{world.collaboration_id}",
                          params={"delete_dependents": "False"})
    assert response.status_code == 400
    msg = response.json()["msg"]
    assert "1 task, 2 nodes, 1 study." in msg, msg
    assert world.ok("GET", f"/collaboration/{world.collaboration_id}")["id"] == \
        world.collaboration_id


def test_delete_dependents_removes_them_and_revokes_nodes(api_server: ServerProcess) -> None:
    """Tasks, nodes (keys dead at once) and studies go; the organizations stay."""
    world = build_world(api_server)
    study = new_study(world, [world.org_ids[0]])
    task = world.create_task()
    node_token = world.node_token(world.org_ids[0])
    response = world.call("DELETE", f"/collaboration/{world.collaboration_id}",
                          params={"delete_dependents": True})
    assert response.status_code == 200, response.text
    for path in (f"/collaboration/{world.collaboration_id}", f"/task/{task['id']}",
                 f"/study/{study['id']}", *(f"/node/{n}" for n in world.node_ids.values())):
        assert status(world, "GET", path, world.root_token) == 404, path
    assert status(world, "GET", f"/organization/{world.org_ids[0]}", node_token) == 401
    for key in world.api_keys.values():
        assert node_login(world, key).status_code == 401
    for org in world.org_ids:
        assert world.ok("GET", f"/organization/{org}")["id"] == org


def test_delete_without_dependents_and_who_may(cast: Cast) -> None:
    """An empty collaboration is deleted by root; no default admin role holds the rule."""
    world = cast.world
    collab = new_collaboration(world, [cast.a, new_organization(world)])
    for token in (cast.collab_admin, cast.outsider_admin, cast.org_admin, cast.researcher):
        assert status(world, "DELETE", f"/collaboration/{collab}", token) == 403
    assert world.ok("DELETE", f"/collaboration/{collab}")["msg"].endswith("deleted")
    assert status(world, "GET", f"/collaboration/{collab}", cast.root) == 404
    assert world.ok("GET", f"/organization/{cast.a}")["id"] == cast.a
