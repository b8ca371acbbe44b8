"""Organizations, collaborations, nodes, users, pagination and the small endpoints."""

from __future__ import annotations

import base64
import math

import httpx

from tests.fixtures.server import ServerProcess
from tests.server.conftest import World, auth, unique


def test_created_resources_have_v4_shapes(world: World) -> None:
    """Relations are {id, link} objects; secrets never leak."""
    org = world.ok("GET", f"/organization/{world.org_ids[0]}")
    assert org["public_key"] == "" and org["nodes"].startswith("/api/node?")
    collab = world.ok("GET", f"/collaboration/{world.collaboration_id}")
    assert collab["encrypted"] is False
    members = world.ok("GET", "/organization",
                       params={"collaboration_id": world.collaboration_id})["data"]
    assert sorted(o["id"] for o in members) == sorted(world.org_ids)
    node = world.ok("GET", f"/node/{world.node_ids[world.org_ids[0]]}")
    assert "api_key" not in node and "api_key_hash" not in node
    assert node["organization"]["id"] == world.org_ids[0]
    assert node["organization"]["link"] == f"/api/organization/{world.org_ids[0]}"
    assert node["collaboration"]["id"] == world.collaboration_id
    for user in world.ok("GET", "/user", params={"per_page": 100})["data"]:
        assert not {"password", "password_hash", "otp_secret"} & set(user)


def test_one_node_per_organization_and_collaboration(world: World) -> None:
    """A second node for the same pair, or for an org outside the collaboration, is 400."""
    again = world.call("POST", "/node", json={"collaboration_id": world.collaboration_id,
                                              "organization_id": world.org_ids[0]})
    assert again.status_code == 400 and "already has a node" in again.json()["msg"]
    outside = world.call("POST", "/node", json={"collaboration_id": world.collaboration_id,
                                                "organization_id": world.outsider_id})
    assert outside.status_code == 400 and "not part of" in outside.json()["msg"]


def test_organization_patch_sets_public_key(world: World) -> None:
    """A node may upload its organization's public key; it comes back base64."""
    pem = b"-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n"
    key = base64.b64encode(pem).decode()
    node = world.node_token(world.org_ids[1])
    patched = world.ok("PATCH", f"/organization/{world.org_ids[1]}", node,
                       json={"public_key": key})
    assert patched["public_key"] == key
    other = world.call("PATCH", f"/organization/{world.org_ids[0]}", node,
                       json={"public_key": key})
    assert other.status_code == 403


def test_duplicate_names_are_rejected(world: World) -> None:
    """Organization and collaboration names are unique."""
    name = world.ok("GET", f"/organization/{world.org_ids[0]}")["name"]
    assert world.call("POST", "/organization", json={"name": name}).status_code == 400
    collab = world.ok("GET", f"/collaboration/{world.collaboration_id}")["name"]
    assert world.call("POST", "/collaboration",
                      json={"name": collab, "organization_ids": []}).status_code == 400


def test_researcher_cannot_create_organizations(world: World) -> None:
    """Permissions are enforced: a researcher has no organization CREATE rule."""
    response = world.call("POST", "/organization", world.researcher_token,
                          json={"name": unique("org")})
    assert response.status_code in (401, 403) and "msg" in response.json()


def test_pagination_links_and_total_count(world: World) -> None:
    """Pages follow v4: data+links, total-count header, previous/next only inside."""
    name = unique("paged")
    for _ in range(5):
        world.create_task(name=name)
    per_page = 2
    expected_pages = math.ceil(5 / per_page)
    seen = []
    for page in range(1, expected_pages + 1):
        response = world.call("GET", "/task", params={"name": name, "per_page": per_page,
                                                      "page": page})
        assert response.status_code == 200
        assert response.headers["total-count"] == "5"
        body = response.json()
        assert set(body) == {"data", "links"}
        links = body["links"]
        assert links["first"].startswith("/api/task?") and "page=1" in links["first"]
        assert f"page={expected_pages}" in links["last"]
        assert f"name={name}" in links["self"] and "per_page=2" in links["self"]
        assert ("previous" in links) == (page > 1)
        assert ("next" in links) == (page < expected_pages)
        seen += [t["id"] for t in body["data"]]
    assert len(seen) == len(set(seen)) == 5


def test_default_page_size_is_ten(world: World) -> None:
    """Without per_page a page holds at most 10 items."""
    body = world.ok("GET", "/rule")
    assert len(body["data"]) == 10 and "next" in body["links"]


def test_small_endpoints(api_server: ServerProcess) -> None:
    """health, version, blobstream status, unknown routes, DELETE /port."""
    assert httpx.get(f"{api_server.url}/health").json() == {"database": True}
    version = httpx.get(f"{api_server.url}/version").json()
    assert version["version"] == "4.15.2" and "v6flow" in version
    assert httpx.get(f"{api_server.url}/blobstream/status").json() == {
        "blob_store_enabled": False}
    missing = httpx.get(f"{api_server.url}/no/such/route")
    assert missing.status_code == 404 and "msg" in missing.json()
    assert "detail" not in missing.json()
    token = httpx.post(f"{api_server.url}/token/user", json={
        "username": "root", "password": api_server.root_password}).json()["access_token"]
    port = httpx.delete(f"{api_server.url}/port", params={"run_id": 1}, headers=auth(token))
    assert port.status_code == 200 and "msg" in port.json()
