"""People for the user/role/rule tests: users with given roles, logged in, in a test world."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tests.server.conftest import World, login, unique

VIEWER = "Viewer"
RESEARCHER = "Researcher"
ORG_ADMIN = "Organization Admin"
COLLAB_ADMIN = "Collaboration Admin"
ROOT = "Root"
#: The default roles from the weakest to the strongest.
LADDER = (VIEWER, RESEARCHER, ORG_ADMIN, COLLAB_ADMIN, ROOT)


@dataclass
class Person:
    """A user the test created, with a fresh access token."""

    id: int
    username: str
    password: str
    token: str
    organization_id: int


def role_id(world: World, name: str) -> int:
    """The id of a default role."""
    (role,) = [r for r in world.ok("GET", "/role", params={"name": name})["data"]
               if r["organization"] is None]
    return int(role["id"])


def rule_ids(world: World, **filters: Any) -> list[int]:
    """Ids of the rules a filter selects (as root)."""
    body = world.ok("GET", "/rule", params={"per_page": 1000, **filters})
    return [int(r["id"]) for r in body["data"]]


def rule_id(world: World, name: str, operation: str, scope: str) -> int:
    """The id of one rule."""
    (found,) = rule_ids(world, name=name, operation=operation, scope=scope)
    return found


def person(world: World, organization_id: int, *roles: str, rules: tuple[int, ...] = (),
           email: bool = True) -> Person:
    """Create a user (as root) with default roles and extra rules, and log in."""
    username, password = unique("user"), secrets.token_urlsafe(12)
    body: dict[str, Any] = {
        "username": username, "password": password, "firstname": "First",
        "lastname": "Last", "organization_id": organization_id,
        "roles": [role_id(world, name) for name in roles], "rules": list(rules)}
    if email:
        body["email"] = f"{username}@example.org"
    created = world.ok("POST", "/user", json=body)
    return Person(id=int(created["id"]), username=username, password=password,
                  token=login(world.url, username, password), organization_id=organization_id)


def ids(world: World, path: str, token: str | None = None, **params: Any) -> list[int]:
    """Ids of every item of a list endpoint (one large page)."""
    body = world.ok("GET", path, token, params={"per_page": 1000, **params})
    return [int(item["id"]) for item in body["data"]]


def role_names_of(world: World, user_id: int) -> set[str]:
    """Names of the roles a user holds (as root)."""
    body = world.ok("GET", "/role", params={"user_id": user_id, "per_page": 1000})
    return {r["name"] for r in body["data"]}
