"""Users: edits and deletion for oneself and for admins within their reach and their rules.

``world`` has organizations A and B in one collaboration and an outsider C; every test makes
its own people. Checks read back through the REST API as root.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.server import ServerProcess, start_server
from tests.server.api.staff import (
    COLLAB_ADMIN,
    ORG_ADMIN,
    RESEARCHER,
    ROOT,
    VIEWER,
    ids,
    person,
    role_id,
    role_names_of,
    rule_id,
)
from tests.server.conftest import HTTP, World, auth, build_world, login, unique


def test_user_edits_own_names_and_email(world: World) -> None:
    """A Viewer changes their own first/last name and email (user EDIT OWN)."""
    me = person(world, world.org_ids[0], VIEWER)
    email = f"{unique('mail')}@example.org"
    answer = world.ok("PATCH", f"/user/{me.id}", me.token,
                      json={"firstname": "Ada", "lastname": "Lovelace", "email": email})
    stored = world.ok("GET", f"/user/{me.id}")
    assert (stored["firstname"], stored["lastname"], stored["email"]) == \
        ("Ada", "Lovelace", email)
    assert answer == stored


@pytest.mark.parametrize("roles", [(VIEWER,), (ORG_ADMIN,), (COLLAB_ADMIN,)])
def test_nobody_grants_themselves_roles_or_rules(world: World, roles: tuple[str, ...]) -> None:
    """PATCH /user/<self> adding Root, another role or a rule is 403; nothing changes."""
    me = person(world, world.org_ids[0], *roles)
    before = role_names_of(world, me.id), ids(world, "/rule", user_id=me.id)
    for body in ({"roles": [role_id(world, ROOT)]},
                 {"roles": [role_id(world, r) for r in roles] + [role_id(world, RESEARCHER)]},
                 {"rules": [rule_id(world, "user", "VIEW", "GLOBAL")]}):
        refused = world.call("PATCH", f"/user/{me.id}", me.token, json=body)
        assert refused.status_code == 403, (body, refused.text)
    assert (role_names_of(world, me.id), ids(world, "/rule", user_id=me.id)) == before


#: (admin role, operation) -> organizations whose users it reaches, of A (own), B (partner in a
#: collaboration) and C (outsider). As in v4 4.15, a Collaboration Admin edits but does not
#: delete the users of partner organizations.
REACH = {
    (ORG_ADMIN, "PATCH"): "A", (ORG_ADMIN, "DELETE"): "A",
    (COLLAB_ADMIN, "PATCH"): "AB", (COLLAB_ADMIN, "DELETE"): "A",
    (ROOT, "PATCH"): "ABC", (ROOT, "DELETE"): "ABC",
}


@pytest.mark.parametrize(("admin_role", "method"), list(REACH))
def test_admins_edit_and_delete_users_in_their_reach_only(
        world: World, admin_role: str, method: str) -> None:
    """Organization/collaboration/global user admins reach their org/collaboration/everyone."""
    orgs = {"A": world.org_ids[0], "B": world.org_ids[1], "C": world.outsider_id}
    admin = person(world, orgs["A"], admin_role)
    kwargs = {"json": {"lastname": "Changed"}} if method == "PATCH" else {}
    for label, org_id in orgs.items():
        target = person(world, org_id, VIEWER)
        answer = world.call(method, f"/user/{target.id}", admin.token, **kwargs)
        after = world.call("GET", f"/user/{target.id}")
        if label in REACH[admin_role, method]:
            assert answer.status_code == 200, (label, answer.text)
            assert (after.json()["lastname"] == "Changed" if method == "PATCH"
                    else after.status_code == 404)
        else:
            assert answer.status_code == 403, (label, answer.text)
            assert after.json()["lastname"] == "Last"


def test_node_tokens_cannot_administer_users_or_roles(world: World) -> None:
    """Every user/role write is for user tokens only: a node token gets 403."""
    node = world.node_token(world.org_ids[0])
    target = person(world, world.org_ids[0], VIEWER)
    role = world.ok("POST", "/role", json={"name": unique("role"),
                                           "organization_id": world.org_ids[0]})
    some_rule = rule_id(world, "node", "VIEW", "ORGANIZATION")
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", f"/user/{target.id}", {"json": {"firstname": "Node"}}),
        ("DELETE", f"/user/{target.id}", {}),
        ("POST", "/role", {"json": {"name": unique("role")}}),
        ("PATCH", f"/role/{role['id']}", {"json": {"description": "node"}}),
        ("DELETE", f"/role/{role['id']}", {}),
        ("POST", f"/role/{role['id']}/rule/{some_rule}", {}),
        ("DELETE", f"/role/{role['id']}/rule/{some_rule}", {}),
        ("GET", f"/role/{role['id']}/rule", {}),
    ]
    for method, path, kwargs in cases:
        answer = world.call(method, path, node, **kwargs)
        assert answer.status_code == 403, (method, path, answer.text)
    assert world.ok("GET", f"/user/{target.id}")["firstname"] == "First"
    assert world.ok("GET", f"/role/{role['id']}") == role


@pytest.mark.parametrize("caller_role", [VIEWER, RESEARCHER])
def test_lower_roles_cannot_edit_or_delete_other_users(world: World, caller_role: str) -> None:
    """Viewer and Researcher only manage their own account."""
    caller = person(world, world.org_ids[0], caller_role)
    colleague = person(world, world.org_ids[0], VIEWER)
    assert world.call("PATCH", f"/user/{colleague.id}", caller.token,
                      json={"firstname": "X"}).status_code == 403
    assert world.call("DELETE", f"/user/{colleague.id}", caller.token).status_code == 403
    assert world.ok("GET", f"/user/{colleague.id}")["firstname"] == "First"


def test_admin_cannot_edit_or_delete_a_more_powerful_user(world: World) -> None:
    """An Organization Admin cannot change the email of (or delete) a Collaboration Admin of
    the same organization: that would open a takeover of the stronger account."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    stronger = person(world, world.org_ids[0], COLLAB_ADMIN)
    refused = world.call("PATCH", f"/user/{stronger.id}", admin.token,
                         json={"email": f"{unique('evil')}@example.org"})
    assert refused.status_code == 403 and "rules" in refused.json()["msg"]
    assert world.call("DELETE", f"/user/{stronger.id}", admin.token).status_code == 403
    assert world.ok("GET", f"/user/{stronger.id}")["email"] == f"{stronger.username}@example.org"


def test_assigning_roles_and_rules_needs_holding_them(world: World) -> None:
    """An Organization Admin may give Researcher but not Collaboration Admin or a global rule."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    target = person(world, world.org_ids[0], VIEWER)
    for body in ({"roles": [role_id(world, COLLAB_ADMIN)]},
                 {"roles": [role_id(world, ROOT)]},
                 {"rules": [rule_id(world, "user", "VIEW", "GLOBAL")]}):
        refused = world.call("PATCH", f"/user/{target.id}", admin.token, json=body)
        assert refused.status_code == 403, (body, refused.text)
        assert "do not have" in refused.json()["msg"]
    assert role_names_of(world, target.id) == {VIEWER}
    world.ok("PATCH", f"/user/{target.id}", admin.token,
             json={"roles": [role_id(world, VIEWER), role_id(world, RESEARCHER)]})
    assert role_names_of(world, target.id) == {VIEWER, RESEARCHER}


def test_creating_a_user_with_rules_one_lacks_is_refused(world: World) -> None:
    """POST /user applies the same grant check as PATCH."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    username = unique("user")
    for extra in ({"roles": [role_id(world, ROOT)]},
                  {"rules": [rule_id(world, "task", "VIEW", "GLOBAL")]}):
        refused = world.call("POST", "/user", admin.token, json={
            "username": username, "password": secrets.token_urlsafe(12), **extra})
        assert refused.status_code == 403, refused.text
    assert ids(world, "/user", username=username) == []


def test_user_patch_refuses_bad_input(world: World) -> None:
    """Unknown role/rule ids, taken username/email, another's username, a password: 400."""
    me = person(world, world.org_ids[0], VIEWER)
    other = person(world, world.org_ids[0], VIEWER)
    cases = [
        ({"roles": [999_999_999]}, "Role id=999999999"),
        ({"rules": [999_999_999]}, "Rule id=999999999"),
        ({"email": f"{other.username}@example.org".upper()}, "email"),
    ]
    for body, words in cases:
        answer = world.call("PATCH", f"/user/{me.id}", json=body)
        assert answer.status_code == 400 and words in answer.json()["msg"], (body, answer.text)
    taken = world.call("PATCH", f"/user/{me.id}", me.token, json={"username": other.username})
    assert taken.status_code == 400 and "username" in taken.json()["msg"]
    foreign = world.call("PATCH", f"/user/{other.id}", json={"username": unique("name")})
    assert foreign.status_code == 400 and "another user" in foreign.json()["msg"]
    password = world.call("PATCH", f"/user/{me.id}", me.token, json={"password": "x" * 12})
    assert password.status_code == 400
    assert [e["field"] for e in password.json()["errors"]] == ["password"]
    assert world.call("PATCH", "/user/999999999", json={}).status_code == 404
    assert world.call("DELETE", "/user/999999999").status_code == 404
    stored = world.ok("GET", f"/user/{me.id}")
    assert (stored["username"], stored["email"]) == (me.username, f"{me.username}@example.org")


def test_user_may_rename_themselves(world: World) -> None:
    """A free username may be taken by its owner (v4)."""
    me = person(world, world.org_ids[0], VIEWER)
    name = unique("renamed")
    world.ok("PATCH", f"/user/{me.id}", me.token, json={"username": name})
    assert world.ok("GET", f"/user/{me.id}")["username"] == name
    assert login(world.url, name, me.password)


def test_roles_of_another_organization_cannot_be_assigned(world: World) -> None:
    """A custom role of organization B is not for a user of organization A (400)."""
    role = world.ok("POST", "/role", json={"name": unique("role"), "description": "b",
                                           "rules": [], "organization_id": world.org_ids[1]})
    target = person(world, world.org_ids[0], VIEWER)
    refused = world.call("PATCH", f"/user/{target.id}", json={"roles": [role["id"]]})
    assert refused.status_code == 400 and "another organization" in refused.json()["msg"]


def test_moving_a_user_needs_global_user_edit(world: World) -> None:
    """Only a global user admin moves a user to another organization (v4)."""
    admin = person(world, world.org_ids[0], COLLAB_ADMIN)
    target = person(world, world.org_ids[0], VIEWER)
    moved = {"organization_id": world.org_ids[1]}
    assert world.call("PATCH", f"/user/{target.id}", admin.token, json=moved).status_code == 403
    assert world.ok("GET", f"/user/{target.id}")["organization"]["id"] == world.org_ids[0]
    world.ok("PATCH", f"/user/{target.id}", json=moved)
    assert world.ok("GET", f"/user/{target.id}")["organization"]["id"] == world.org_ids[1]
    assert world.call("PATCH", f"/user/{target.id}",
                      json={"organization_id": 999_999_999}).status_code == 404


def test_deleted_user_is_gone_and_its_token_refused_at_once(world: World) -> None:
    """DELETE /user/<id>: the row is gone and the user's unexpired token answers 401."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    target = person(world, world.org_ids[0], RESEARCHER)
    assert world.call("GET", f"/user/{target.id}", target.token).status_code == 200
    answer = world.ok("DELETE", f"/user/{target.id}", admin.token)
    assert str(target.id) in answer["msg"]
    assert world.call("GET", f"/user/{target.id}").status_code == 404
    assert world.call("GET", f"/user/{target.id}", target.token).status_code == 401
    assert target.id not in ids(world, "/user", role_id=role_id(world, RESEARCHER))


def test_a_deleted_users_id_is_never_given_to_a_new_account(world: World) -> None:
    """SQLite would hand the highest deleted rowid out again, and the deleted user's
    unexpired token would then act as the newcomer; ids are never reused."""
    gone = person(world, world.org_ids[0], ORG_ADMIN)  # the newest account: the highest id
    world.ok("DELETE", f"/user/{gone.id}")
    newcomer = person(world, world.org_ids[0], VIEWER)
    assert newcomer.id > gone.id
    assert world.call("GET", "/user", gone.token).status_code == 401


def test_user_may_delete_own_account(world: World) -> None:
    """A Viewer deletes themselves (user DELETE OWN, as in v4)."""
    me = person(world, world.org_ids[0], VIEWER)
    world.ok("DELETE", f"/user/{me.id}", me.token)
    assert world.call("GET", f"/user/{me.id}").status_code == 404


def test_deleting_a_user_with_tasks_needs_delete_dependents(world: World) -> None:
    """A user who created tasks is deleted only with delete_dependents=true, tasks too."""
    researcher = person(world, world.org_ids[0], RESEARCHER)
    created = world.call("POST", "/task", researcher.token, json=world.task_body())
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    refused = world.call("DELETE", f"/user/{researcher.id}")
    assert refused.status_code == 400 and "1 tasks" in refused.json()["msg"]
    assert world.ok("GET", f"/task/{task_id}")["id"] == task_id
    world.ok("DELETE", f"/user/{researcher.id}", params={"delete_dependents": "true"})
    assert world.call("GET", f"/task/{task_id}").status_code == 404
    assert world.call("GET", f"/user/{researcher.id}").status_code == 404


def test_user_list_filters(world: World) -> None:
    """role_id, rule_id (direct or through a role), collaboration_id and last_seen filters."""
    extra = rule_id(world, "port", "VIEW", "GLOBAL")
    holder = person(world, world.org_ids[1], RESEARCHER, rules=(extra,))
    plain = person(world, world.outsider_id, VIEWER, email=False)
    researchers = ids(world, "/user", role_id=role_id(world, RESEARCHER))
    assert holder.id in researchers and plain.id not in researchers
    assert holder.id in ids(world, "/user", rule_id=extra)
    assert plain.id not in ids(world, "/user", rule_id=extra)
    task_create = rule_id(world, "task", "CREATE", "COLLABORATION")  # through Researcher
    assert holder.id in ids(world, "/user", rule_id=task_create)
    in_collab = ids(world, "/user", collaboration_id=world.collaboration_id)
    assert holder.id in in_collab and plain.id not in in_collab
    today = datetime.now(UTC).date()
    assert holder.id in ids(world, "/user", last_seen_from=today.isoformat())
    assert holder.id in ids(world, "/user", last_seen_till=today.isoformat())
    yesterday = (today - timedelta(days=1)).isoformat()
    assert holder.id not in ids(world, "/user", last_seen_till=yesterday)
    assert world.call("GET", "/user", params={"last_seen_from": "soon"}).status_code == 400


def test_user_role_filter_needs_a_visible_role(world: World) -> None:
    """GET /user?role_id= of another organization's role is 403, of an unknown role 404."""
    role = world.ok("POST", "/role", json={"name": unique("role"), "description": "b",
                                           "rules": [], "organization_id": world.org_ids[1]})
    viewer = person(world, world.org_ids[0], VIEWER)
    assert world.call("GET", "/user", viewer.token,
                      params={"role_id": role["id"]}).status_code == 403
    assert world.call("GET", "/user", viewer.token,
                      params={"role_id": 999_999_999}).status_code == 404


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def lone_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              postgres_databases: Callable[[], str]) -> Iterator[ServerProcess]:
    """A fresh server whose only Root holder is 'root' (the shared one has more)."""
    directory = tmp_path_factory.mktemp(f"lone-root-{request.param}")
    url = (f"sqlite:///{directory}/server.sqlite" if request.param == "sqlite"
           else postgres_databases())
    proc = start_server(database_url=url, root_password=secrets.token_urlsafe(12),
                        log_dir=directory)
    yield proc
    proc.stop()


def test_last_root_holder_is_never_deleted_or_demoted(lone_root: ServerProcess) -> None:
    """Deleting or demoting the only Root holder is 400, even by someone with every rule."""
    world = build_world(lone_root, organizations=2)
    root_id = int(HTTP.get(f"{world.url}/user", params={"username": "root"},
                           headers=auth(world.root_token)).json()["data"][0]["id"])
    everything, root_role = ids(world, "/rule"), role_id(world, ROOT)
    almighty = person(world, world.org_ids[0], rules=tuple(everything))
    demote: dict[str, Any] = {"json": {"roles": []}}
    cases: list[tuple[str, dict[str, Any]]] = [("DELETE", {}), ("PATCH", demote)]
    for method, kwargs in cases:
        refused = world.call(method, f"/user/{root_id}", almighty.token, **kwargs)
        assert refused.status_code == 400, refused.text
        assert "last user holding the Root" in refused.json()["msg"]
    assert world.call("DELETE", f"/user/{root_id}").status_code == 400  # root themselves
    assert world.call("PATCH", f"/user/{root_id}", **demote).status_code == 403  # own roles
    assert ids(world, "/user", role_id=root_role) == [root_id]
    # once someone else holds Root, root may go
    world.ok("PATCH", f"/user/{almighty.id}", json={"roles": [root_role]})
    world.ok("DELETE", f"/user/{root_id}", almighty.token)
    assert ids(world, "/user", almighty.token, role_id=root_role) == [almighty.id]
    alone = world.call("DELETE", f"/user/{almighty.id}", almighty.token)
    assert alone.status_code == 400 and "last user holding the Root" in alone.json()["msg"]
