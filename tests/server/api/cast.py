"""The people of the administration tests: one user per default role, and helpers to make the
organizations, collaborations, nodes and studies a test changes (so tests share nothing they
change).

In a fresh :func:`~tests.server.conftest.build_world` world, organization A
(``world.org_ids[0]``) and B (``world.org_ids[1]``) share the collaboration, and X
(``world.outsider_id``) is put in a collaboration of its own, so that its administrator is
"of another organization and another collaboration".
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.fixtures.server import ServerProcess
from tests.server.conftest import HTTP, World, build_world, login, unique

#: A rule as the API prints it: (resource, OPERATION, SCOPE), e.g. ("study", "EDIT", "ORGANIZATION")
RuleName = tuple[str, str, str]


def role_id(world: World, name: str) -> int:
    """Id of a global default role."""
    roles = world.ok("GET", "/role", params={"name": name, "per_page": 100})["data"]
    (role,) = [r for r in roles if r["organization"] is None]
    return int(role["id"])


def rule_ids(world: World, rules: Sequence[RuleName]) -> list[int]:
    """Ids of rules named (resource, OPERATION, SCOPE)."""
    every = world.ok("GET", "/rule", params={"per_page": 1000})["data"]
    index = {(r["name"], r["operation"], r["scope"]): int(r["id"]) for r in every}
    return [index[rule] for rule in rules]


def user_token(world: World, organization_id: int, *, roles: Sequence[str] = (),
               rules: Sequence[RuleName] = ()) -> str:
    """Create (as root) a user of ``organization_id`` with default roles and extra rules; log
    it in and return its access token."""
    username, password = unique("user"), secrets.token_urlsafe(12)
    world.ok("POST", "/user", json={
        "username": username, "password": password, "firstname": "T", "lastname": "User",
        "organization_id": organization_id, "roles": [role_id(world, r) for r in roles],
        "rules": rule_ids(world, rules)})
    return login(world.url, username, password)


def new_organization(world: World) -> int:
    """A fresh organization."""
    return int(world.ok("POST", "/organization", json={"name": unique("org")})["id"])


def new_collaboration(world: World, organization_ids: Sequence[int]) -> int:
    """A fresh collaboration of these organizations."""
    return int(world.ok("POST", "/collaboration", json={
        "name": unique("collab"), "organization_ids": list(organization_ids),
        "encrypted": False})["id"])


def new_node(world: World, collaboration_id: int, organization_id: int) -> dict[str, Any]:
    """Register a node (the answer holds its ``api_key``)."""
    return dict(world.ok("POST", "/node", json={"collaboration_id": collaboration_id,
                                               "organization_id": organization_id}))


def node_login(world: World, api_key: str) -> Any:
    """``POST /token/node``: the answer (tokens, or an error)."""
    return HTTP.post(f"{world.url}/token/node", json={"api_key": api_key}, timeout=10)


def new_study(world: World, organization_ids: Sequence[int],
              collaboration_id: int | None = None) -> dict[str, Any]:
    """A fresh study (as root) in the world's collaboration unless another is given."""
    return dict(world.ok("POST", "/study", json={
        "name": unique("study"), "organization_ids": list(organization_ids),
        "collaboration_id": collaboration_id or world.collaboration_id}))


def ids(items: Sequence[dict[str, Any]]) -> list[int]:
    """The ids of a list of resource objects, sorted."""
    return sorted(int(item["id"]) for item in items)


def listed(world: World, path: str, token: str | None = None, **params: Any) -> list[int]:
    """Ids of every item a list endpoint answers (one large page), sorted."""
    return ids(world.ok("GET", path, token, params={"per_page": 1000, **params})["data"])


@dataclass(frozen=True)
class Cast:
    """A fresh world and the users the authorization tests play with."""

    world: World
    a: int  #: organization A (in the world's collaboration)
    b: int  #: organization B (in the world's collaboration)
    x: int  #: organization X (in another collaboration)
    other_collaboration_id: int
    viewer: str  #: Viewer of A
    researcher: str  #: Researcher of A
    org_admin: str  #: Organization Admin of A
    collab_admin: str  #: Collaboration Admin of A
    partner_admin: str  #: Organization Admin of B
    outsider_admin: str  #: Collaboration Admin of X

    @property
    def root(self) -> str:
        """Root's access token."""
        return self.world.root_token


def build_cast(proc: ServerProcess) -> Cast:
    """A fresh world with one user per default role (see :class:`Cast`)."""
    world = build_world(proc)
    a, b, x = world.org_ids[0], world.org_ids[1], world.outsider_id
    other = new_collaboration(world, [x])
    return Cast(
        world=world, a=a, b=b, x=x, other_collaboration_id=other,
        viewer=user_token(world, a, roles=["Viewer"]),
        researcher=user_token(world, a, roles=["Researcher"]),
        org_admin=user_token(world, a, roles=["Organization Admin"]),
        collab_admin=user_token(world, a, roles=["Collaboration Admin"]),
        partner_admin=user_token(world, b, roles=["Organization Admin"]),
        outsider_admin=user_token(world, x, roles=["Collaboration Admin"]),
    )


def status(world: World, method: str, path: str, token: str, **kwargs: Any) -> int:
    """Only the status code of one request."""
    return world.call(method, path, token, **kwargs).status_code
