"""Studies: some organizations of one collaboration; rules, members, tasks and filters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.server import ServerProcess
from tests.server.api.cast import (
    Cast,
    build_cast,
    ids,
    listed,
    new_study,
    node_login,
    status,
    user_token,
)
from tests.server.conftest import World, build_world, unique


@pytest.fixture(scope="module")
def cast(api_server: ServerProcess) -> Cast:
    """Users of every default role, per backend."""
    return build_cast(api_server)


def _body(world: World, organization_ids: list[int], **extra: Any) -> dict[str, Any]:
    return {"name": unique("study"), "collaboration_id": world.collaboration_id,
            "organization_ids": organization_ids, **extra}


def test_create_answers_members_and_the_links_list_it(cast: Cast) -> None:
    """201 with the members; the study, organization and collaboration links all find it."""
    world = cast.world
    body = _body(world, [cast.a])
    response = world.call("POST", "/study", cast.collab_admin, json=body)
    assert response.status_code == 201, response.text
    study = response.json()
    assert study["name"] == body["name"] and ids(study["organizations"]) == [cast.a]
    assert study["collaboration"]["id"] == world.collaboration_id
    read = world.ok("GET", f"/study/{study['id']}")
    assert read == {**study, "organizations": f"/api/organization?study_id={study['id']}"}
    assert read["tasks"] == f"/api/task?study_id={study['id']}"
    assert listed(world, "/organization", study_id=study["id"]) == [cast.a]
    org_link = world.ok("GET", f"/organization/{cast.a}")["studies"]
    collab_link = world.ok("GET", f"/collaboration/{world.collaboration_id}")["studies"]
    for link in (org_link, collab_link):
        path, _, query = link.removeprefix("/api").partition("?")
        key, _, value = query.partition("=")
        assert study["id"] in listed(world, path, **{key: value}), link
    embedded = world.ok("GET", f"/study/{study['id']}", params={"include": "organizations"})
    assert embedded == study


def test_create_refuses_outsiders_and_lower_roles(cast: Cast) -> None:
    """Another collaboration's admin, Organization Admins, Researchers, Viewers: 403."""
    world = cast.world
    body = _body(world, [cast.a])
    for token in (cast.outsider_admin, cast.org_admin, cast.partner_admin, cast.researcher,
                  cast.viewer):
        assert status(world, "POST", "/study", token, json=body) == 403
    assert listed(world, "/study", name=body["name"]) == []


def test_create_bad_input(cast: Cast) -> None:
    """Outsider organizations (named), a taken name, repeats, no members, unknown ids."""
    world = cast.world
    outside = world.call("POST", "/study", json=_body(world, [cast.a, cast.x]))
    assert outside.status_code == 400
    assert f"[{cast.x}]" in outside.json()["msg"] and "not part of collaboration" in \
        outside.json()["msg"]
    taken = new_study(world, [cast.a])["name"]
    again = world.call("POST", "/study", json={**_body(world, [cast.a]), "name": taken})
    assert again.status_code == 400 and taken in again.json()["msg"]
    for organization_ids in ([cast.a, cast.a], []):
        response = world.call("POST", "/study", json=_body(world, organization_ids))
        assert response.status_code == 400, organization_ids
        assert [e["field"] for e in response.json()["errors"]] == ["organization_ids"]
    assert status(world, "POST", "/study", cast.root,
                  json=_body(world, [cast.a], collaboration_id=999999999)) == 404
    assert status(world, "POST", "/study", cast.root, json=_body(world, [999999999])) == 404


def test_visibility_follows_the_rules(cast: Cast) -> None:
    """Viewer: studies of its organization; Collaboration Admin: all of its collaborations;
    outsiders: none; a node: its organization's."""
    world = cast.world
    with_a, only_b = new_study(world, [cast.a, cast.b]), new_study(world, [cast.b])
    mine = listed(world, "/study", cast.viewer, collaboration_id=world.collaboration_id)
    assert with_a["id"] in mine and only_b["id"] not in mine
    assert status(world, "GET", f"/study/{only_b['id']}", cast.viewer) == 403
    assert world.ok("GET", f"/study/{with_a['id']}", cast.viewer)["id"] == with_a["id"]
    every = listed(world, "/study", cast.collab_admin)
    assert {with_a["id"], only_b["id"]} <= set(every)
    assert set(every) == set(listed(world, "/study", collaboration_id=world.collaboration_id))
    assert listed(world, "/study", cast.outsider_admin) == []
    assert status(world, "GET", f"/study/{with_a['id']}", cast.outsider_admin) == 403
    assert {with_a["id"], only_b["id"]} <= set(listed(world, "/study", world.node_token(cast.b)))
    node_a_sees = listed(world, "/study", world.node_token(cast.a))
    assert with_a["id"] in node_a_sees and only_b["id"] not in node_a_sees
    assert status(world, "GET", "/study/999999999", cast.viewer) == 404


def test_list_filters(cast: Cast) -> None:
    """name (LIKE), organization_id, collaboration_id, include=organizations."""
    world = cast.world
    first, second = new_study(world, [cast.a]), new_study(world, [cast.b])
    assert listed(world, "/study", name=first["name"]) == [first["id"]]
    prefix = first["name"].rsplit("-", 1)[0]
    assert {first["id"], second["id"]} <= set(listed(world, "/study", name=f"{prefix}-%"))
    with_b = listed(world, "/study", organization_id=cast.b)
    assert second["id"] in with_b and first["id"] not in with_b
    assert listed(world, "/study", collaboration_id=cast.other_collaboration_id) == []
    page = world.ok("GET", "/study", params={"name": second["name"], "include": "organizations"})
    assert ids(page["data"][0]["organizations"]) == [cast.b]


def test_update_renames_and_replaces_members(cast: Cast) -> None:
    """A Collaboration Admin renames and replaces members; outsiders are 400, unknown 404."""
    world = cast.world
    study = new_study(world, [cast.a])
    path = f"/study/{study['id']}"
    name = unique("renamed")
    answer = world.ok("PATCH", path, cast.collab_admin,
                      json={"name": name, "organization_ids": [cast.b]})
    assert answer["name"] == name and ids(answer["organizations"]) == [cast.b]
    assert listed(world, "/organization", study_id=study["id"]) == [cast.b]
    outside = world.call("PATCH", path, json={"organization_ids": [cast.a, cast.x]})
    assert outside.status_code == 400 and f"[{cast.x}]" in outside.json()["msg"]
    assert status(world, "PATCH", path, cast.root, json={"organization_ids": [999999999]}) == 404
    assert status(world, "PATCH", "/study/999999999", cast.root, json={"name": "x"}) == 404
    assert world.ok("GET", path)["name"] == name


def test_update_refusals_by_scope(cast: Cast) -> None:
    """Organization-scope editors rename their study but not its members; outsiders, lower
    roles and organization-scope editors of non-member organizations: 403."""
    world = cast.world
    study = new_study(world, [cast.a])
    path = f"/study/{study['id']}"
    editor_a = user_token(world, cast.a, roles=["Viewer"],
                          rules=[("study", "EDIT", "ORGANIZATION")])
    editor_b = user_token(world, cast.b, roles=["Viewer"],
                          rules=[("study", "EDIT", "ORGANIZATION")])
    name = unique("by-org-editor")
    assert world.ok("PATCH", path, editor_a, json={"name": name})["name"] == name
    assert status(world, "PATCH", path, editor_a, json={"organization_ids": [cast.a, cast.b]}) \
        == 403
    for token in (editor_b, cast.outsider_admin, cast.org_admin, cast.researcher, cast.viewer):
        assert status(world, "PATCH", path, token, json={"name": unique("no")}) == 403
    after = world.ok("GET", path, params={"include": "organizations"})
    assert after["name"] == name and ids(after["organizations"]) == [cast.a]


def test_add_and_remove_organization(cast: Cast) -> None:
    """Members answered; twice, outside the collaboration, not a member: 400 naming it."""
    world = cast.world
    study = new_study(world, [cast.a])
    path = f"/study/{study['id']}/organization"
    assert ids(world.ok("POST", path, cast.collab_admin, json={"id": cast.b})) == \
        sorted([cast.a, cast.b])
    assert listed(world, "/organization", study_id=study["id"]) == sorted([cast.a, cast.b])
    twice = world.call("POST", path, json={"id": cast.b})
    assert twice.status_code == 400 and "already part" in twice.json()["msg"]
    outside = world.call("POST", path, json={"id": cast.x})
    assert outside.status_code == 400 and f"[{cast.x}]" in outside.json()["msg"]
    assert ids(world.ok("DELETE", path, cast.collab_admin, json={"id": cast.a})) == [cast.b]
    gone = world.call("DELETE", path, json={"id": cast.a})
    assert gone.status_code == 400 and "not part" in gone.json()["msg"]
    for token in (cast.outsider_admin, cast.org_admin, cast.viewer):
        assert status(world, "POST", path, token, json={"id": cast.a}) == 403
        assert status(world, "DELETE", path, token, json={"id": cast.b}) == 403
    assert status(world, "POST", "/study/999999999/organization", cast.root,
                  json={"id": cast.a}) == 404
    assert listed(world, "/organization", study_id=study["id"]) == [cast.b]


def test_delete_with_tasks_needs_delete_dependents(cast: Cast) -> None:
    """A study with tasks: 400 naming them; with delete_dependents its tasks go too; who may."""
    world = cast.world
    study = new_study(world, [cast.a, cast.b])
    task = world.create_task(study_id=study["id"])
    path = f"/study/{study['id']}"
    refused = world.call("DELETE", path, cast.collab_admin)
    assert refused.status_code == 400 and "1 task." in refused.json()["msg"]
    for token in (cast.outsider_admin, cast.org_admin, cast.researcher, cast.viewer):
        assert status(world, "DELETE", path, token, params={"delete_dependents": True}) == 403
    world.ok("DELETE", path, cast.collab_admin, params={"delete_dependents": True})
    assert status(world, "GET", path, cast.root) == 404
    assert status(world, "GET", f"/task/{task['id']}", cast.root) == 404
    empty = new_study(world, [cast.a])
    world.ok("DELETE", f"/study/{empty['id']}", cast.collab_admin)
    assert status(world, "GET", f"/study/{empty['id']}", cast.root) == 404


def test_task_in_a_study(cast: Cast) -> None:
    """study_id alone names the collaboration; the task records it and ?study_id= finds it."""
    world = cast.world
    study = new_study(world, [cast.a])
    body = world.task_body([cast.a], study_id=study["id"])
    del body["collaboration_id"]
    created = world.call("POST", "/task", world.researcher_token, json=body)
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["study"]["id"] == study["id"]
    assert task["collaboration"]["id"] == world.collaboration_id
    assert world.ok("GET", f"/task/{task['id']}")["study"]["id"] == study["id"]
    assert [t["id"] for t in world.ok("GET", "/task", params={"study_id": study["id"]})[
        "data"]] == [task["id"]]
    assert task["id"] not in [t["id"] for t in world.ok(
        "GET", "/task", params={"collaboration_id": world.collaboration_id,
                                "study_id": new_study(world, [cast.a])["id"]})["data"]]


def test_task_in_a_study_refusals(cast: Cast) -> None:
    """Organizations outside the study (named), a study of another collaboration, unknown."""
    world = cast.world
    study = new_study(world, [cast.a])
    outside = world.call("POST", "/task", world.researcher_token,
                         json=world.task_body([cast.a, cast.b], study_id=study["id"]))
    assert outside.status_code == 400
    assert f"[{cast.b}]" in outside.json()["msg"] and "study" in outside.json()["msg"]
    mismatch = world.call("POST", "/task", world.researcher_token, json=world.task_body(
        [cast.a], study_id=study["id"], collaboration_id=cast.other_collaboration_id))
    assert mismatch.status_code == 400 and "does not belong" in mismatch.json()["msg"]
    assert status(world, "POST", "/task", world.researcher_token,
                  json=world.task_body([cast.a], study_id=999999999)) == 404
    assert world.ok("GET", "/task", params={"study_id": study["id"]})["data"] == []


def test_subtasks_stay_in_their_study(cast: Cast) -> None:
    """A container's subtask inherits the study (and its limits); another study is 401."""
    world = cast.world
    study = new_study(world, [cast.a])
    parent = world.create_task([cast.a], study_id=study["id"])
    container = world.container_token(parent, cast.a)
    child = world.call("POST", "/task", container, json=world.task_body([cast.a]))
    assert child.status_code == 201, child.text
    assert child.json()["study"]["id"] == study["id"]
    outside = world.call("POST", "/task", container, json=world.task_body([cast.a, cast.b]))
    assert outside.status_code == 400 and f"[{cast.b}]" in outside.json()["msg"]
    other = new_study(world, [cast.a, cast.b])
    escape = world.call("POST", "/task", container,
                        json=world.task_body([cast.a, cast.b], study_id=other["id"]))
    assert escape.status_code == 401
    assert world.ok("GET", f"/study/{study['id']}", container)["id"] == study["id"]


def test_organization_and_node_study_filters(cast: Cast) -> None:
    """?study_id= lists the members (organizations) and their nodes; a study the caller may
    not see lists nothing."""
    world = cast.world
    study = new_study(world, [cast.b])
    assert listed(world, "/organization", study_id=study["id"]) == [cast.b]
    assert listed(world, "/organization", cast.collab_admin, study_id=study["id"]) == [cast.b]
    assert listed(world, "/organization", cast.viewer, study_id=study["id"]) == []
    assert listed(world, "/node", study_id=study["id"]) == [world.node_ids[cast.b]]
    assert listed(world, "/node", cast.viewer, study_id=study["id"]) == []
    node_b = node_login(world, world.api_keys[cast.b]).json()["access_token"]
    assert listed(world, "/organization", node_b, study_id=study["id"]) == [cast.b]


def test_tasks_listed_by_study_need_task_visibility(api_server: ServerProcess) -> None:
    """GET /task?study_id= shows only the tasks the caller may see."""
    world = build_world(api_server)
    a, b = world.org_ids
    study = new_study(world, [a, b])
    task = world.create_task([a, b], study_id=study["id"])
    b_viewer = user_token(world, b, roles=["Viewer"])
    assert world.ok("GET", "/task", b_viewer, params={"study_id": study["id"]})["data"] == []
    assert [t["id"] for t in world.ok("GET", "/task", params={"study_id": study["id"]})[
        "data"]] == [task["id"]]
