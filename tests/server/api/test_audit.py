"""The audit trail: security events stored with who, what, when and from where; root reads it."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from tests.server.conftest import HTTP, World, login, unique
from v6flow.wire import format_datetime, input_to_wire, make_input, utcnow


def _entries(world: World, **params: Any) -> list[dict[str, Any]]:
    """Every audit entry matching ``params`` (all pages), newest first."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        body = world.ok("GET", "/audit", params={**params, "per_page": 1000, "page": page})
        found += body["data"]
        if "next" not in body["links"]:
            return found
        page += 1


def _new_user(world: World, password: str, role: str = "Researcher") -> tuple[int, str]:
    role_id = world.ok("GET", "/role", params={"name": role})["data"][0]["id"]
    username = unique("audited")
    user = world.ok("POST", "/user", json={
        "username": username, "password": password, "firstname": "A", "lastname": "U",
        "organization_id": world.org_ids[0], "roles": [role_id]})
    return int(user["id"]), username


def _login_status(world: World, username: str, password: str) -> int:
    return HTTP.post(f"{world.url}/token/user",
                     json={"username": username, "password": password}).status_code


def test_only_root_reads_the_audit_trail(world: World) -> None:
    """Root 200; a researcher, a node and an anonymous caller are refused."""
    assert world.call("GET", "/audit").status_code == 200
    assert world.call("GET", "/audit", world.researcher_token).status_code == 403
    assert world.call("GET", "/audit", world.node_token(world.org_ids[0])).status_code == 403
    assert HTTP.get(f"{world.url}/audit").status_code == 401


def test_failed_login_is_stored_although_its_request_is_rolled_back(world: World) -> None:
    """A wrong password answers 401, and the attempt is in the trail with the client address."""
    user_id, username = _new_user(world, secrets.token_urlsafe(12))
    assert _login_status(world, username, "not-the-password") == 401
    entries = _entries(world, event="login_failed", actor_id=user_id)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["actor_type"], entry["actor_name"]) == ("user", username)
    assert entry["client_address"] == "127.0.0.1"
    assert entry["details"] == {"reason": "wrong password"}


def test_failed_login_of_an_unknown_name_does_not_store_the_name(world: World) -> None:
    """An unknown username (often a password typed in the wrong field) is not kept."""
    typed = unique("maybe-a-password")
    before = format_datetime(utcnow() - timedelta(seconds=1))
    assert _login_status(world, typed, "whatever") == 401
    entries = _entries(world, event="login_failed", since=before, actor_type="anonymous")
    assert entries and all(e["actor_id"] is None and e["actor_name"] is None for e in entries)
    assert typed not in json.dumps(_entries(world))


def test_login_is_stored_with_who_when_and_where(world: World) -> None:
    """A successful login: actor, time within the request, client address."""
    password = secrets.token_urlsafe(12)
    user_id, username = _new_user(world, password)
    before = utcnow()
    login(world.url, username, password)
    after = utcnow()
    entries = _entries(world, event="login", actor_id=user_id)
    assert len(entries) == 1
    assert entries[0]["client_address"] == "127.0.0.1"
    assert format_datetime(before) <= entries[0]["at"] <= format_datetime(after)


def test_filters_by_event_actor_and_time_and_pages(world: World) -> None:
    """event/actor_id/since/until narrow the trail; per_page pages it with total-count."""
    user_id, username = _new_user(world, secrets.token_urlsafe(12))
    start = utcnow()
    for _ in range(3):
        assert _login_status(world, username, "wrong") == 401
    mine = _entries(world, actor_id=user_id)
    assert [e["event"] for e in mine] == ["login_failed"] * 3
    assert [e["id"] for e in mine] == sorted((e["id"] for e in mine), reverse=True)
    assert _entries(world, actor_id=user_id, event="login") == []
    assert len(_entries(world, actor_id=user_id, since=format_datetime(start))) == 3
    assert _entries(world, actor_id=user_id, until=format_datetime(start)) == []
    response = world.call("GET", "/audit", params={"actor_id": user_id, "per_page": 1})
    assert response.headers["total-count"] == "3" and len(response.json()["data"]) == 1
    bad = world.call("GET", "/audit", params={"event": "no-such-event"})
    assert bad.status_code == 400 and "event" in bad.text


def test_keys_kills_deletes_and_container_tokens_are_stored(world: World) -> None:
    """Node key creation, a kill, a delete, a token issue and a refused token, with actors."""
    org = world.org_ids[0]
    task = world.create_task([org])
    run_id = world.runs(task["id"])[0]["id"]
    refused = world.call("POST", "/token/container", world.node_token(org),
                         json={"task_id": task["id"], "image": task["image"]})
    assert refused.status_code == 400  # the run is not started yet
    world.container_token(task, org)
    world.ok("POST", "/kill/task", world.researcher_token, json={"id": task["id"]})
    world.ok("DELETE", f"/task/{task['id']}")
    org_id = world.ok("POST", "/organization", json={"name": unique("org")})["id"]
    collab = world.ok("POST", "/collaboration", json={"name": unique("collab"),
                                                      "organization_ids": [org_id]})
    node = world.ok("POST", "/node", json={"collaboration_id": collab["id"],
                                           "organization_id": org_id})

    def one(event: str, target: tuple[str, int]) -> dict[str, Any]:
        found = [e for e in _entries(world, event=event)
                 if (e["target_type"], e["target_id"]) == target]
        assert len(found) == 1, (event, target, found)
        return found[0]

    node_id = world.node_ids[org]
    refusal = one("container_token_refused", ("task", task["id"]))
    assert (refusal["actor_type"], refusal["actor_id"]) == ("node", node_id)
    issued = one("container_token_issued", ("run", run_id))
    assert (issued["actor_id"], issued["details"]) == (node_id, {"task_id": task["id"]})
    killed = one("task_killed", ("task", task["id"]))
    assert killed["actor_type"] == "user" and killed["details"] == {"run_ids": [run_id]}
    assert one("task_deleted", ("task", task["id"]))["actor_name"] == "root"
    assert one("node_created", ("node", node["id"]))["details"] == {
        "collaboration_id": collab["id"], "organization_id": org_id}


def test_trail_holds_no_secrets_or_data(world: World) -> None:
    """After logins, a marked task input, a node key and container tokens: none in the trail."""
    password, wrong = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    _user_id, username = _new_user(world, password)
    assert _login_status(world, username, wrong) == 401
    user_token = login(world.url, username, password)
    marker = f"marker-{secrets.token_hex(8)}"
    body = world.task_body([world.org_ids[0]])
    wire = input_to_wire(make_input("partial", kwargs={"marker": marker}))
    body["organizations"][0]["input"] = wire
    task = world.ok("POST", "/task", user_token, json=body)
    container_token = world.container_token(task, world.org_ids[0])
    world.ok("POST", "/kill/task", user_token, json={"id": task["id"]})
    org_id = world.ok("POST", "/organization", json={"name": unique("org")})["id"]
    collab = world.ok("POST", "/collaboration", json={"name": unique("collab"),
                                                      "organization_ids": [org_id]})
    api_key = world.ok("POST", "/node", json={"collaboration_id": collab["id"],
                                              "organization_id": org_id})["api_key"]
    trail = json.dumps(_entries(world))
    assert username in trail  # the trail did record these events
    for secret in (password, wrong, marker, wire, api_key, container_token, user_token,
                   world.root_token):
        assert secret not in trail


def test_role_user_and_node_changes_are_stored(world: World) -> None:
    """Role create/update/delete, a user's roles and fields changed, a node deleted: each an
    entry naming its target; a changed field is named, its value is not stored."""
    # Prepare
    rule_id = world.ok("GET", "/rule", params={"name": "task", "operation": "view",
                                               "scope": "organization"})["data"][0]["id"]
    user_id, _username = _new_user(world, secrets.token_urlsafe(12))
    org_id = world.ok("POST", "/organization", json={"name": unique("org")})["id"]
    collab = world.ok("POST", "/collaboration", json={"name": unique("collab"),
                                                      "organization_ids": [org_id]})
    node_id = world.ok("POST", "/node", json={"collaboration_id": collab["id"],
                                              "organization_id": org_id})["id"]
    email = f"{unique('mail')}@example.org"
    # Execute
    role = world.ok("POST", "/role", json={"name": unique("role"), "description": "d",
                                           "rules": [rule_id],
                                           "organization_id": world.org_ids[0]})
    world.ok("PATCH", f"/role/{role['id']}", json={"description": "changed"})
    world.ok("PATCH", f"/user/{user_id}", json={"roles": [role["id"]]})
    world.ok("PATCH", f"/user/{user_id}", json={"email": email, "lastname": "Changed"})
    world.ok("PATCH", f"/user/{user_id}", json={"roles": []})
    world.ok("DELETE", f"/role/{role['id']}")
    world.ok("DELETE", f"/node/{node_id}")
    # Assert
    for event, kind, target in (("role_created", "role", role["id"]),
                                ("role_updated", "role", role["id"]),
                                ("role_deleted", "role", role["id"]),
                                ("node_deleted", "node", node_id)):
        entries = [e for e in _entries(world, event=event) if e["target_id"] == target]
        assert len(entries) == 1, event
        assert (entries[0]["target_type"], entries[0]["actor_type"]) == (kind, "user")
    roles = [e for e in _entries(world, event="user_roles_changed") if e["target_id"] == user_id]
    assert [e["details"]["role_ids"] for e in roles] == [[], [role["id"]]]  # newest first
    (updated,) = [e for e in _entries(world, event="user_updated") if e["target_id"] == user_id]
    assert updated["details"] == {"fields": "lastname, email"}
    assert email not in json.dumps(_entries(world))
