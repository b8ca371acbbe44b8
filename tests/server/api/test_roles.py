"""Roles: custom roles with rules their makers hold, default roles fixed, visibility by scope,
and membership answered only about visible users (security review finding 6).

``world`` has organizations A and B in one collaboration and an outsider C.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.api.staff import (
    COLLAB_ADMIN,
    LADDER,
    ORG_ADMIN,
    RESEARCHER,
    ROOT,
    VIEWER,
    ids,
    person,
    role_id,
    role_names_of,
    rule_id,
    rule_ids,
)
from tests.server.conftest import World, unique


def _role(world: World, organization_id: int, rules: list[int] | None = None,
          token: str | None = None) -> dict[str, Any]:
    """Create a custom role (as root unless another token is given)."""
    return dict(world.ok("POST", "/role", token, json={
        "name": unique("role"), "description": "test role", "rules": rules or [],
        "organization_id": organization_id}))


def test_admin_creates_a_role_with_rules_they_hold(world: World) -> None:
    """An Organization Admin makes a role of their organization (the default) with a subset
    of the Researcher rules; its rules and organization read back."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    wanted = sorted(rule_ids(world, role_id=role_id(world, RESEARCHER))[:4])
    answer = world.call("POST", "/role", admin.token,
                        json={"name": unique("role"), "description": "d", "rules": wanted})
    assert answer.status_code == 201, answer.text
    role = answer.json()
    assert role["organization"]["id"] == world.org_ids[0]
    assert rule_ids(world, role_id=role["id"]) == wanted
    assert role["rules"] == f"/api/rule?role_id={role['id']}"
    assert role["users"] == f"/api/user?role_id={role['id']}"
    assert world.ok("GET", f"/role/{role['id']}") == role


def test_creating_a_role_with_rules_one_lacks_is_refused(world: World) -> None:
    """An Organization Admin cannot bundle a rule they lack (user VIEW GLOBAL) into a role."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    name = unique("role")
    refused = world.call("POST", "/role", admin.token, json={
        "name": name, "description": "d",
        "rules": [rule_id(world, "user", "VIEW", "ORGANIZATION"),
                  rule_id(world, "user", "VIEW", "GLOBAL")]})
    assert refused.status_code == 403 and "user/v/glo" in refused.json()["msg"]
    assert ids(world, "/role", name=name) == []


def test_roles_for_other_organizations_need_a_wider_scope(world: World) -> None:
    """Organization Admin: own organization only; root: any; unknown organization: 404."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    body = {"name": unique("role"), "description": "d", "rules": [],
            "organization_id": world.org_ids[1]}
    assert world.call("POST", "/role", admin.token, json=body).status_code == 403
    assert world.ok("POST", "/role", json=body)["organization"]["id"] == world.org_ids[1]
    missing = world.call("POST", "/role", json={**body, "organization_id": 999_999_999})
    assert missing.status_code == 404


@pytest.mark.parametrize("caller_role", [VIEWER, RESEARCHER])
def test_lower_roles_cannot_write_roles(world: World, caller_role: str) -> None:
    """Viewer and Researcher may not create, change or delete roles, nor their rules."""
    caller = person(world, world.org_ids[0], caller_role)
    role = _role(world, world.org_ids[0])
    any_rule = rule_id(world, "task", "VIEW", "ORGANIZATION")  # they hold it
    for method, path, kwargs in (
            ("POST", "/role", {"json": {"name": unique("role"), "description": "d"}}),
            ("PATCH", f"/role/{role['id']}", {"json": {"name": unique("role")}}),
            ("DELETE", f"/role/{role['id']}", {}),
            ("POST", f"/role/{role['id']}/rule/{any_rule}", {}),
            ("DELETE", f"/role/{role['id']}/rule/{any_rule}", {})):
        answer = world.call(method, path, caller.token, **kwargs)
        assert answer.status_code == 403, (method, path, answer.text)
    assert world.ok("GET", f"/role/{role['id']}") == role


@pytest.mark.parametrize("caller_role", [ORG_ADMIN, COLLAB_ADMIN])
def test_admins_of_other_organizations_cannot_change_a_role(world: World,
                                                            caller_role: str) -> None:
    """A role of organization A is out of reach of B's admins (role rules are org-scoped)."""
    caller = person(world, world.org_ids[1], caller_role)
    role = _role(world, world.org_ids[0])
    held = rule_id(world, "task", "VIEW", "ORGANIZATION")
    for method, path, kwargs in (
            ("PATCH", f"/role/{role['id']}", {"json": {"description": "mine"}}),
            ("DELETE", f"/role/{role['id']}", {}),
            ("POST", f"/role/{role['id']}/rule/{held}", {})):
        answer = world.call(method, path, caller.token, **kwargs)
        assert answer.status_code == 403, (method, path, answer.text)
    assert world.ok("GET", f"/role/{role['id']}") == role


def test_update_role_changes_only_what_is_sent(world: World) -> None:
    """PATCH with nulls (as the v4 client sends) leaves those fields; rules are replaced."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    first, second = rule_ids(world, role_id=role_id(world, VIEWER))[:2]
    role = _role(world, world.org_ids[0], [first], admin.token)
    name = unique("renamed")
    world.ok("PATCH", f"/role/{role['id']}", admin.token,
             json={"name": name, "description": None, "rules": None})
    stored = world.ok("GET", f"/role/{role['id']}")
    assert (stored["name"], stored["description"]) == (name, "test role")
    assert rule_ids(world, role_id=role["id"]) == [first]
    world.ok("PATCH", f"/role/{role['id']}", admin.token, json={"rules": [second]})
    assert rule_ids(world, role_id=role["id"]) == [second]


def test_update_role_refuses_adding_or_removing_rules_one_lacks(world: World) -> None:
    """An admin may neither add a rule they lack nor strip one (put there by root)."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    held = rule_id(world, "task", "VIEW", "ORGANIZATION")
    lacked = rule_id(world, "task", "VIEW", "GLOBAL")
    mine = _role(world, world.org_ids[0], [held], admin.token)
    refused = world.call("PATCH", f"/role/{mine['id']}", admin.token,
                         json={"rules": [held, lacked]})
    assert refused.status_code == 403
    assert world.call("POST", f"/role/{mine['id']}/rule/{lacked}",
                      admin.token).status_code == 403
    assert rule_ids(world, role_id=mine["id"]) == [held]
    roots = _role(world, world.org_ids[0], [held, lacked])
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", f"/role/{roots['id']}", {"json": {"rules": [held]}}),
        ("DELETE", f"/role/{roots['id']}/rule/{lacked}", {}),
        ("DELETE", f"/role/{roots['id']}", {})]
    for method, path, kwargs in cases:
        answer = world.call(method, path, admin.token, **kwargs)
        assert answer.status_code == 403, (method, path, answer.text)
    assert rule_ids(world, role_id=roots["id"]) == sorted([held, lacked])


@pytest.mark.parametrize("name", [VIEWER, ROOT])
def test_default_roles_cannot_be_changed_or_deleted(world: World, name: str) -> None:
    """Even root gets 400 for PATCH/DELETE of a default role and for its rule links."""
    default = role_id(world, name)
    before = rule_ids(world, role_id=default)
    some_rule = rule_ids(world)[0]
    for method, path, kwargs in (
            ("PATCH", f"/role/{default}", {"json": {"description": "changed"}}),
            ("PATCH", f"/role/{default}", {"json": {"rules": []}}),
            ("DELETE", f"/role/{default}", {}),
            ("POST", f"/role/{default}/rule/{some_rule}", {}),
            ("DELETE", f"/role/{default}/rule/{some_rule}", {})):
        answer = world.call(method, path, **kwargs)
        assert answer.status_code == 400 and "default role" in answer.json()["msg"], \
            (method, path, answer.text)
    assert rule_ids(world, role_id=default) == before


def test_rules_are_added_to_and_removed_from_a_role(world: World) -> None:
    """POST/DELETE /role/<id>/rule/<rule_id> answer the role's rules; GET lists them."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    first, second = rule_ids(world, role_id=role_id(world, RESEARCHER))[:2]
    role = _role(world, world.org_ids[0], [first], admin.token)
    added = world.call("POST", f"/role/{role['id']}/rule/{second}", admin.token)
    assert added.status_code == 201
    assert sorted(r["id"] for r in added.json()) == sorted([first, second])
    listed = world.ok("GET", f"/role/{role['id']}/rule", admin.token)["data"]
    assert sorted(r["id"] for r in listed) == sorted([first, second])
    removed = world.ok("DELETE", f"/role/{role['id']}/rule/{first}", admin.token)
    assert [r["id"] for r in removed] == [second]
    assert rule_ids(world, role_id=role["id"]) == [second]
    again = world.call("DELETE", f"/role/{role['id']}/rule/{first}", admin.token)
    assert again.status_code == 404
    assert world.call("POST", f"/role/{role['id']}/rule/999999999",
                      admin.token).status_code == 404
    assert world.call("GET", "/role/999999999/rule").status_code == 404


def test_deleting_a_role_takes_it_from_its_holders(world: World) -> None:
    """DELETE /role/<id>: the role is gone and its holders no longer have it."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    role = _role(world, world.org_ids[0],
                 [rule_id(world, "task", "VIEW", "ORGANIZATION")], admin.token)
    holder = person(world, world.org_ids[0], VIEWER)
    world.ok("PATCH", f"/user/{holder.id}", admin.token,
             json={"roles": [role_id(world, VIEWER), role["id"]]})
    assert role_names_of(world, holder.id) == {VIEWER, role["name"]}
    world.ok("DELETE", f"/role/{role['id']}", admin.token)
    assert world.call("GET", f"/role/{role['id']}").status_code == 404
    assert role_names_of(world, holder.id) == {VIEWER}
    assert world.call("GET", f"/user/{holder.id}", holder.token).status_code == 200
    assert world.call("DELETE", "/role/999999999").status_code == 404


def test_role_names_are_unique_per_organization(world: World) -> None:
    """A name taken in the organization or by a default role is 400; other orgs may reuse."""
    role = _role(world, world.org_ids[0])
    for name, org in ((role["name"], world.org_ids[0]), (ROOT, world.org_ids[0]),
                      (RESEARCHER, world.org_ids[1])):
        answer = world.call("POST", "/role", json={"name": name, "description": "d",
                                                    "organization_id": org})
        assert answer.status_code == 400 and "already exists" in answer.json()["msg"]
    renamed = world.call("PATCH", f"/role/{_role(world, world.org_ids[0])['id']}",
                         json={"name": role["name"]})
    assert renamed.status_code == 400
    world.ok("POST", "/role", json={"name": role["name"], "description": "d",
                                    "organization_id": world.org_ids[1]})


def test_role_input_is_validated(world: World) -> None:
    """Unknown rule ids are 400 naming the id; an empty name is 400 naming the field."""
    unknown = world.call("POST", "/role", json={"name": unique("role"), "rules": [999_999_999]})
    assert unknown.status_code == 400 and "Rule id=999999999" in unknown.json()["msg"]
    empty = world.call("POST", "/role", json={"name": ""})
    assert empty.status_code == 400
    assert [e["field"] for e in empty.json()["errors"]] == ["name"]


def test_role_visibility_follows_the_view_scope(world: World) -> None:
    """Viewer: default roles and their organization's; Collaboration Admin: also partner
    organizations'; nobody without a role VIEW rule sees more than their own roles."""
    a_role, b_role = _role(world, world.org_ids[0]), _role(world, world.org_ids[1])
    c_role = _role(world, world.outsider_id)
    defaults = {role_id(world, name) for name in LADDER}
    viewer = person(world, world.org_ids[0], VIEWER)
    seen = set(ids(world, "/role", viewer.token))
    assert defaults | {a_role["id"]} <= seen and not {b_role["id"], c_role["id"]} & seen
    assert world.call("GET", f"/role/{b_role['id']}", viewer.token).status_code == 403
    assert world.call("GET", f"/role/{b_role['id']}/rule", viewer.token).status_code == 403
    admin = person(world, world.org_ids[0], COLLAB_ADMIN)
    seen = set(ids(world, "/role", admin.token))
    assert {a_role["id"], b_role["id"]} <= seen and c_role["id"] not in seen
    assert world.call("GET", f"/role/{c_role['id']}", admin.token).status_code == 403
    nobody = person(world, world.org_ids[0], rules=(rule_id(world, "task", "VIEW",
                                                            "ORGANIZATION"),))
    assert ids(world, "/role", nobody.token) == []
    assert world.call("GET", f"/role/{a_role['id']}", nobody.token).status_code == 403


def test_role_membership_of_invisible_users_is_refused(world: World) -> None:
    """Finding 6: a Viewer of A asking for the roles of B's Root holder gets 403, exactly as
    GET /user/<id>; for a colleague of A the answer lists the colleague's roles."""
    root_holder = person(world, world.org_ids[1], ROOT)
    viewer = person(world, world.org_ids[0], VIEWER)
    assert world.call("GET", f"/user/{root_holder.id}", viewer.token).status_code == 403
    leak = world.call("GET", "/role", viewer.token, params={"user_id": root_holder.id})
    assert leak.status_code == 403 and "data" not in leak.json()
    assert world.call("GET", "/role", viewer.token,
                      params={"user_id": 999_999_999}).status_code == 404
    colleague = person(world, world.org_ids[0], RESEARCHER)
    assert ids(world, "/role", viewer.token, user_id=colleague.id) == [
        role_id(world, RESEARCHER)]


def test_role_list_filters(world: World) -> None:
    """name, description, organization_id (+ include_root), rule_id and user_id select."""
    marker = unique("desc")
    special = rule_id(world, "port", "VIEW", "COLLABORATION")
    role = world.ok("POST", "/role", json={"name": unique("role"), "description": marker,
                                           "rules": [special],
                                           "organization_id": world.org_ids[1]})
    assert ids(world, "/role", name=role["name"]) == [role["id"]]
    assert ids(world, "/role", description=marker) == [role["id"]]
    assert role["id"] in ids(world, "/role", organization_id=world.org_ids[1])
    own_and_global = ids(world, "/role", organization_id=world.org_ids[1], include_root=True)
    assert {role["id"], role_id(world, VIEWER)} <= set(own_and_global)
    assert role_id(world, VIEWER) not in ids(world, "/role", organization_id=world.org_ids[1])
    with_special = set(ids(world, "/role", rule_id=special))
    assert {role["id"], role_id(world, ROOT)} <= with_special
    assert role_id(world, COLLAB_ADMIN) not in with_special
    holder = person(world, world.org_ids[1], VIEWER)
    world.ok("PATCH", f"/user/{holder.id}", json={"roles": [role["id"]]})
    assert ids(world, "/role", user_id=holder.id) == [role["id"]]
