"""Nodes: edits (name, VPN address) and deletion, which revokes the node at once."""

from __future__ import annotations

import pytest

from tests.fixtures.server import ServerProcess
from tests.server.api.cast import (
    Cast,
    build_cast,
    new_collaboration,
    new_node,
    node_login,
    status,
)
from tests.server.conftest import HTTP, auth


@pytest.fixture(scope="module")
def cast(api_server: ServerProcess) -> Cast:
    """Users of every default role, per backend."""
    return build_cast(api_server)


def _fresh_nodes(cast: Cast) -> tuple[dict[str, object], dict[str, object]]:
    """Nodes of A and of B in a new collaboration of the two."""
    collab = new_collaboration(cast.world, [cast.a, cast.b])
    return new_node(cast.world, collab, cast.a), new_node(cast.world, collab, cast.b)


def test_update_name_and_vpn_address(cast: Cast) -> None:
    """A's Organization Admin renames A's node, sets and clears its ip; GET agrees."""
    world = cast.world
    node, _ = _fresh_nodes(cast)
    path = f"/node/{node['id']}"
    name = f"renamed-{node['id']}"
    answer = world.ok("PATCH", path, cast.org_admin, json={"name": name, "ip": "10.76.0.3"})
    assert answer["name"] == name and answer["ip"] == "10.76.0.3"
    assert world.ok("GET", path) == answer
    assert world.ok("PATCH", path, cast.org_admin, json={"clear_ip": True})["ip"] is None
    assert world.ok("GET", path)["ip"] is None and world.ok("GET", path)["name"] == name
    assert "api_key" not in answer


def test_update_refuses_organization_collaboration_and_bad_values(cast: Cast) -> None:
    """organization_id/collaboration_id cannot change (400 naming them); bad ip, taken name."""
    world = cast.world
    node, other = _fresh_nodes(cast)
    path = f"/node/{node['id']}"
    for field, value in (("organization_id", cast.b), ("collaboration_id", 1), ("ip", "nope")):
        response = world.call("PATCH", path, json={field: value})
        assert response.status_code == 400, field
        assert [e["field"] for e in response.json()["errors"]] == [field]
    taken = world.call("PATCH", path, json={"name": other["name"]})
    assert taken.status_code == 400 and str(other["name"]) in taken.json()["msg"]
    after = world.ok("GET", path)
    assert (after["organization"]["id"], after["name"], after["ip"]) == (cast.a, node["name"],
                                                                          None)
    assert status(world, "PATCH", "/node/999999999", cast.root, json={"name": "x"}) == 404


def test_update_reaches_only_what_the_rules_cover(cast: Cast) -> None:
    """Partner and outsider admins, Researchers and Viewers get 403; a Collaboration Admin
    reaches the partner's node in a shared collaboration; a node edits only itself."""
    world = cast.world
    node_a, node_b = _fresh_nodes(cast)
    for token in (cast.partner_admin, cast.outsider_admin, cast.researcher, cast.viewer):
        assert status(world, "PATCH", f"/node/{node_a['id']}", token,
                      json={"name": f"no-{node_a['id']}"}) == 403
    assert world.ok("PATCH", f"/node/{node_b['id']}", cast.collab_admin,
                    json={"ip": "10.0.0.2"})["ip"] == "10.0.0.2"
    node_token = node_login(world, str(node_a["api_key"])).json()["access_token"]
    assert world.ok("PATCH", f"/node/{node_a['id']}", node_token,
                    json={"ip": "10.0.0.1"})["ip"] == "10.0.0.1"
    assert status(world, "PATCH", f"/node/{node_b['id']}", node_token,
                  json={"ip": "10.0.0.9"}) == 403
    assert world.ok("GET", f"/node/{node_a['id']}")["name"] == node_a["name"]
    assert world.ok("GET", f"/node/{node_b['id']}")["ip"] == "10.0.0.2"


def test_delete_revokes_the_node_at_once(cast: Cast) -> None:
    """After DELETE the node's access token, refresh token and API key are all 401."""
    world = cast.world
    node, _ = _fresh_nodes(cast)
    tokens = node_login(world, str(node["api_key"])).json()
    assert world.ok("GET", f"/node/{node['id']}", tokens["access_token"])["id"] == node["id"]
    assert world.ok("DELETE", f"/node/{node['id']}", cast.org_admin)["msg"].endswith(
        f"id={node['id']}")
    assert status(world, "GET", f"/node/{node['id']}", tokens["access_token"]) == 401
    assert status(world, "GET", "/run", tokens["access_token"]) == 401
    assert node_login(world, str(node["api_key"])).status_code == 401
    refresh = HTTP.post(f"{world.url}/token/refresh", headers=auth(tokens["refresh_token"]),
                        timeout=10)
    assert refresh.status_code == 401
    assert status(world, "GET", f"/node/{node['id']}", cast.root) == 404


def test_delete_reaches_only_what_the_rules_cover(cast: Cast) -> None:
    """Partner and outsider admins, Researchers, Viewers and nodes get 403; a Collaboration
    Admin deletes the partner's node in a shared collaboration."""
    world = cast.world
    node_a, node_b = _fresh_nodes(cast)
    node_token = node_login(world, str(node_a["api_key"])).json()["access_token"]
    for token in (cast.partner_admin, cast.outsider_admin, cast.researcher, cast.viewer,
                  node_token):
        assert status(world, "DELETE", f"/node/{node_a['id']}", token) == 403
    assert world.ok("GET", f"/node/{node_a['id']}")["id"] == node_a["id"]
    world.ok("DELETE", f"/node/{node_b['id']}", cast.collab_admin)
    assert status(world, "GET", f"/node/{node_b['id']}", cast.root) == 404
    assert status(world, "DELETE", f"/node/{node_b['id']}", cast.root) == 404
