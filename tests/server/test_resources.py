"""Organizations, collaborations, nodes, users, pagination and the small endpoints."""

from __future__ import annotations

import math
import secrets
from typing import Any

import httpx

from tests.fixtures.server import ServerProcess
from tests.server.conftest import World, auth, build_world, login, unique
from v6flow.crypto import generate_private_key, public_key_to_wire


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
    key = public_key_to_wire(generate_private_key(2048))
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
    """health, version, blobstream status, unknown routes; DELETE /port is for nodes only."""
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
    assert port.status_code == 403 and "msg" in port.json()


def _ids(world: World, path: str, token: str | None = None, **params: Any) -> list[int]:
    """Ids of every item a list endpoint answers (one large page)."""
    body = world.ok("GET", path, token, params={"per_page": 1000, **params})
    return [int(item["id"]) for item in body["data"]]


def test_lists_and_reads_show_only_what_the_identity_may_see(api_server: ServerProcess) -> None:
    """Organizations: own and collaboration partners; collaborations: own. Others are 403,
    unknown ids 404 (before any permission check), root sees everything."""
    # Prepare: a fresh world, so no other test's collaboration includes its organizations
    world = build_world(api_server)
    researcher, node = world.researcher_token, world.node_token(world.org_ids[1])
    # Execute / Assert: users and nodes see the collaboration and its members only
    for token in (researcher, node):
        assert sorted(_ids(world, "/organization", token)) == sorted(world.org_ids)
        assert _ids(world, "/collaboration", token) == [world.collaboration_id]
    outsider = world.call("GET", f"/organization/{world.outsider_id}", researcher)
    assert outsider.status_code == 403 and "msg" in outsider.json()
    assert world.ok("GET", f"/organization/{world.org_ids[1]}", researcher)["id"] == \
        world.org_ids[1]
    # Execute / Assert: root sees the outsider and every page is counted
    everything = _ids(world, "/organization")
    assert world.outsider_id in everything and set(world.org_ids) <= set(everything)
    response = world.call("GET", "/organization", params={"per_page": 1})
    assert response.headers["total-count"] == str(len(everything))
    assert len(response.json()["data"]) == 1
    # Execute / Assert: unknown ids are 404 whoever asks
    for path in ("/organization/999999999", "/collaboration/999999999"):
        for token in (None, researcher):
            missing = world.call("GET", path, token)
            assert missing.status_code == 404 and "not found" in missing.json()["msg"], path


def test_user_without_view_rules_is_refused_lists_but_told_of_unknown_ids(
        api_server: ServerProcess) -> None:
    """No organization/collaboration VIEW rule: lists and existing ids are 403, unknown 404."""
    # Prepare
    world = build_world(api_server)
    username, password = unique("nobody"), secrets.token_urlsafe(12)
    world.ok("POST", "/user", json={"username": username, "password": password,
                                    "organization_id": world.org_ids[0], "roles": []})
    nobody = login(world.url, username, password)
    # Execute / Assert
    for path in ("/organization", "/collaboration", f"/organization/{world.org_ids[0]}",
                 f"/collaboration/{world.collaboration_id}"):
        refused = world.call("GET", path, nobody)
        assert refused.status_code == 403 and "msg" in refused.json(), path
    assert world.call("GET", "/organization/999999999", nobody).status_code == 404
    assert world.call("GET", "/collaboration/999999999", nobody).status_code == 404


def test_list_filters_narrow_organizations_and_collaborations(api_server: ServerProcess) -> None:
    """Each filter of GET /organization and GET /collaboration selects what it names."""
    # Prepare
    world = build_world(api_server)
    first = world.ok("GET", f"/organization/{world.org_ids[0]}")
    country = unique("land")
    world.ok("PATCH", f"/organization/{world.org_ids[1]}", json={"country": country})
    collab = world.ok("GET", f"/collaboration/{world.collaboration_id}")
    # Execute / Assert: organizations
    assert _ids(world, "/organization", name=first["name"]) == [world.org_ids[0]]
    prefix = first["name"].rsplit("-", 1)[0]
    assert set(world.org_ids) <= set(_ids(world, "/organization", name=f"{prefix}-%"))
    assert _ids(world, "/organization", country=country) == [world.org_ids[1]]
    assert sorted(_ids(world, "/organization", collaboration_id=world.collaboration_id)) == \
        sorted(world.org_ids)
    assert _ids(world, "/organization", study_id=999999999) == []
    assert _ids(world, "/organization", name=first["name"], country=country) == []
    # Execute / Assert: collaborations
    assert _ids(world, "/collaboration", name=collab["name"]) == [world.collaboration_id]
    assert _ids(world, "/collaboration", organization_id=world.org_ids[0],
                name=collab["name"]) == [world.collaboration_id]
    assert _ids(world, "/collaboration", organization_id=world.outsider_id) == []
    assert _ids(world, "/collaboration", name=collab["name"], encrypted="false") == [
        world.collaboration_id]
    assert _ids(world, "/collaboration", name=collab["name"], encrypted="true") == []
