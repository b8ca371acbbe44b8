"""The unmodified vantage6-client 4.15.2 UserClient administers users, roles and rules.

One test per client call (``client.user``, ``client.role``, ``client.rule``); each call runs
in the reference venv and is checked with an independent REST read as root.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.reference import ReferencePython
from tests.fixtures.server import start_server
from tests.server.api.staff import (
    ORG_ADMIN,
    RESEARCHER,
    ROOT,
    VIEWER,
    Person,
    ids,
    person,
    role_id,
    role_names_of,
    rule_id,
    rule_ids,
)
from tests.server.conftest import World, build_world, unique

SCRIPT = (Path(__file__).parent / "reference_admin_call.py").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A real server (SQLite) with organizations A, B (one collaboration) and C."""
    directory = tmp_path_factory.mktemp("userclient-admin")
    proc = start_server(database_url=f"sqlite:///{directory}/server.sqlite",
                        root_password=secrets.token_urlsafe(12), log_dir=directory)
    yield build_world(proc)
    proc.stop()


@pytest.fixture
def call(world: World, reference_client: ReferencePython) -> Any:
    """``call(person, "user", "update", **kwargs)`` through the reference client."""

    def run(who: Person, resource: str, method: str, **kwargs: Any) -> Any:
        url = urlsplit(world.url)
        out = reference_client.run_json(
            SCRIPT, f"{url.scheme}://{url.hostname}", str(url.port), who.username,
            who.password, resource, method, json.dumps(kwargs))
        assert out["whoami"] == {"id": who.id, "organization_id": who.organization_id}
        return out["result"]

    return run


def test_user_list(world: World, call: Any) -> None:
    """user.list(role=…, organization=…) pages what GET /user answers for those filters."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    researcher = person(world, world.org_ids[0], RESEARCHER)
    page = call(admin, "user", "list", role=role_id(world, RESEARCHER),
                organization=world.org_ids[0], per_page=100)
    got = [u["id"] for u in page["data"]]
    assert researcher.id in got
    assert got == ids(world, "/user", role_id=role_id(world, RESEARCHER),
                      organization_id=world.org_ids[0])


def test_user_get(world: World, call: Any) -> None:
    """user.get(id) is GET /user/<id>; user.get() is oneself."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    colleague = person(world, world.org_ids[0], VIEWER)
    assert call(admin, "user", "get", id_=colleague.id) == world.ok("GET",
                                                                    f"/user/{colleague.id}")
    assert call(colleague, "user", "get")["username"] == colleague.username


def test_user_create(world: World, call: Any) -> None:
    """user.create makes a user of the admin's organization with the roles given."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    username = unique("created")
    made = call(admin, "user", "create", username=username, firstname="New", lastname="User",
                password=secrets.token_urlsafe(12), email=f"{username}@example.org",
                organization=world.org_ids[0], roles=[role_id(world, RESEARCHER)])
    stored = world.ok("GET", f"/user/{made['id']}")
    assert (stored["username"], stored["organization"]["id"]) == (username, world.org_ids[0])
    assert role_names_of(world, made["id"]) == {RESEARCHER}


def test_user_update_by_an_admin(world: World, call: Any) -> None:
    """user.update(id, names, email, roles) by an Organization Admin changes those fields."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    target = person(world, world.org_ids[0], VIEWER)
    email = f"{unique('mail')}@example.org"
    answer = call(admin, "user", "update", id_=target.id, firstname="Grace",
                  lastname="Hopper", email=email,
                  roles=[role_id(world, VIEWER), role_id(world, RESEARCHER)])
    stored = world.ok("GET", f"/user/{target.id}")
    assert answer == stored
    assert (stored["firstname"], stored["lastname"], stored["email"]) == \
        ("Grace", "Hopper", email)
    assert role_names_of(world, target.id) == {VIEWER, RESEARCHER}


def test_user_update_of_oneself(world: World, call: Any) -> None:
    """user.update() without id changes one's own names (user EDIT OWN)."""
    me = person(world, world.org_ids[1], VIEWER)
    call(me, "user", "update", firstname="Self", lastname="Made")
    stored = world.ok("GET", f"/user/{me.id}")
    assert (stored["firstname"], stored["lastname"]) == ("Self", "Made")


def test_user_update_granting_oneself_root_is_refused(world: World, call: Any) -> None:
    """user.update(roles=[Root]) on oneself answers the refusal; the roles stay."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    answer = call(admin, "user", "update", roles=[role_id(world, ROOT)])
    assert "own roles" in answer["msg"]
    assert role_names_of(world, admin.id) == {ORG_ADMIN}


def test_user_delete(world: World, call: Any) -> None:
    """user.delete(id) removes the user."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    target = person(world, world.org_ids[0], VIEWER)
    assert call(admin, "user", "delete", id_=target.id) is None
    assert world.call("GET", f"/user/{target.id}").status_code == 404


def test_role_list(world: World, call: Any) -> None:
    """role.list(user=…) and role.list(organization=…, include_root=True) as GET /role."""
    viewer = person(world, world.org_ids[0], VIEWER)
    colleague = person(world, world.org_ids[0], RESEARCHER)
    mine = call(viewer, "role", "list", user=colleague.id)
    assert [r["id"] for r in mine["data"]] == [role_id(world, RESEARCHER)]
    listed = call(viewer, "role", "list", organization=world.org_ids[0], include_root=True,
                  per_page=100)
    assert [r["id"] for r in listed["data"]] == ids(
        world, "/role", viewer.token, organization_id=world.org_ids[0], include_root=True)


def test_role_get(world: World, call: Any) -> None:
    """role.get(id) is GET /role/<id>."""
    viewer = person(world, world.org_ids[0], VIEWER)
    researcher = role_id(world, RESEARCHER)
    assert call(viewer, "role", "get", id_=researcher) == world.ok("GET", f"/role/{researcher}")


def test_role_create(world: World, call: Any) -> None:
    """role.create(name, description, rules) makes a role of the caller's organization."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    wanted = sorted(rule_ids(world, role_id=role_id(world, VIEWER))[:3])
    name = unique("role")
    made = call(admin, "role", "create", name=name, description="made by the v4 client",
                rules=wanted)
    stored = world.ok("GET", f"/role/{made['id']}")
    assert (stored["name"], stored["organization"]["id"]) == (name, world.org_ids[0])
    assert rule_ids(world, role_id=made["id"]) == wanted


def test_role_update(world: World, call: Any) -> None:
    """role.update(role, description=…) sends nulls for the rest; they stay as they were."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    held = rule_id(world, "task", "VIEW", "ORGANIZATION")
    role = world.ok("POST", "/role", admin.token, json={
        "name": unique("role"), "description": "before", "rules": [held]})
    call(admin, "role", "update", role=role["id"], description="after")
    stored = world.ok("GET", f"/role/{role['id']}")
    assert (stored["name"], stored["description"]) == (role["name"], "after")
    assert rule_ids(world, role_id=role["id"]) == [held]
    call(admin, "role", "update", role=role["id"], rules=[])
    assert rule_ids(world, role_id=role["id"]) == []


def test_role_delete(world: World, call: Any) -> None:
    """role.delete(role) removes a custom role; a default role stays (400)."""
    admin = person(world, world.org_ids[0], ORG_ADMIN)
    role = world.ok("POST", "/role", admin.token, json={"name": unique("role")})
    assert call(admin, "role", "delete", role=role["id"]) is None
    assert world.call("GET", f"/role/{role['id']}").status_code == 404
    call(admin, "role", "delete", role=role_id(world, VIEWER))
    assert world.ok("GET", f"/role/{role_id(world, VIEWER)}")["name"] == VIEWER


def test_rule_list(world: World, call: Any) -> None:
    """rule.list(name, operation, scope, role) with the spellings a v4 user types."""
    viewer = person(world, world.org_ids[0], VIEWER)
    page = call(viewer, "rule", "list", operation="view", scope="organization",
                role=role_id(world, VIEWER), per_page=100)
    expected = ids(world, "/rule", operation="VIEW", scope="ORGANIZATION",
                   role_id=role_id(world, VIEWER))
    assert expected and [r["id"] for r in page["data"]] == expected
    (task_rule,) = call(viewer, "rule", "list", name="task", operation="create",
                        scope="collaboration")["data"]
    assert task_rule["id"] == rule_id(world, "task", "CREATE", "COLLABORATION")


def test_rule_get(world: World, call: Any) -> None:
    """rule.get(id) is GET /rule/<id>."""
    viewer = person(world, world.org_ids[0], VIEWER)
    some = rule_id(world, "user", "EDIT", "OWN")
    assert call(viewer, "rule", "get", id_=some) == world.ok("GET", f"/rule/{some}")
