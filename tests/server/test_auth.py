"""Logins, refresh, node keys and token-type gates."""

from __future__ import annotations

import uuid

import httpx
import jwt

from tests.fixtures.server import ServerProcess
from tests.server.conftest import World, auth


def test_login_returns_v4_token_pair_and_refresh_works(api_server: ServerProcess) -> None:
    """Login gives access/refresh tokens with an int ``sub``; refresh gives a new pair."""
    # Execute
    response = httpx.post(f"{api_server.url}/token/user",
                          json={"username": "root", "password": api_server.root_password})
    # Assert
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_url"] == "/api/token/refresh"
    assert response.headers["jwt-token"] == body["access_token"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert isinstance(claims["sub"], int) and claims["client_type"] == "user"
    assert body["user_url"] == f"/api/user/{claims['sub']}"
    assert "Root" in claims["roles"]
    refreshed = httpx.post(f"{api_server.url}{body['refresh_url'].removeprefix('/api')}",
                           headers=auth(body["refresh_token"]))
    assert refreshed.status_code == 200
    me = httpx.get(f"{api_server.url}/user/{claims['sub']}",
                   headers=auth(refreshed.json()["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "root"


def test_wrong_password_and_unknown_user_are_401(api_server: ServerProcess) -> None:
    """Both failures look the same: 401 ``Failed to login``."""
    for username, password in (("root", "wrong-password"), ("nobody-here", "x")):
        response = httpx.post(f"{api_server.url}/token/user",
                              json={"username": username, "password": password})
        assert response.status_code == 401
        assert response.json() == {"msg": "Failed to login"}


def test_refresh_token_is_not_an_access_token(api_server: ServerProcess) -> None:
    """Using the refresh token on a resource is 401, and an access token cannot refresh."""
    body = httpx.post(f"{api_server.url}/token/user",
                      json={"username": "root", "password": api_server.root_password}).json()
    assert httpx.get(f"{api_server.url}/organization",
                     headers=auth(body["refresh_token"])).status_code == 401
    assert httpx.post(f"{api_server.url}/token/refresh",
                      headers=auth(body["access_token"])).status_code == 401


def test_node_login_wrong_key_401_malformed_400(world: World) -> None:
    """An unknown UUID is 401; something that is not a UUID is 400 naming the field."""
    wrong = httpx.post(f"{world.url}/token/node", json={"api_key": str(uuid.uuid4())})
    assert wrong.status_code == 401
    assert wrong.json()["msg"] == "Api key is not recognized!"
    malformed = httpx.post(f"{world.url}/token/node", json={"api_key": "not-a-uuid"})
    assert malformed.status_code == 400
    assert "api_key" in malformed.json()["msg"]
    good = httpx.post(f"{world.url}/token/node", json={"api_key": world.api_keys[world.org_ids[0]]})
    assert good.status_code == 200
    assert good.json()["node_url"] == f"/api/node/{world.node_ids[world.org_ids[0]]}"


def test_missing_and_garbage_tokens_are_401(api_server: ServerProcess) -> None:
    """No header, a non-bearer header, and a forged token are all 401 with a msg."""
    url = f"{api_server.url}/organization"
    no_header = httpx.get(url)
    assert no_header.status_code == 401
    assert no_header.json() == {"msg": "Missing Authorization Header"}
    assert httpx.get(url, headers={"Authorization": "Basic abc"}).status_code == 401
    forged = jwt.encode({"sub": 1, "type": "access", "client_type": "user", "iat": 0},
                        "not-the-secret-but-long-enough-for-hs256", algorithm="HS256")
    response = httpx.get(url, headers=auth(forged))
    assert response.status_code == 401 and "msg" in response.json()


def test_wrong_token_type_is_401_or_403_never_500(world: World) -> None:
    """Node tokens on user-only endpoints (and vice versa) are refused cleanly."""
    task = world.create_task()
    node = world.node_token(world.org_ids[0])
    checks = [
        world.call("GET", f"/task/{task['id']}/status", node),
        world.call("POST", "/task", node, json=world.task_body()),
        world.call("GET", "/user", node),
        world.call("POST", "/kill/task", node, json={"id": task["id"]}),
        world.call("PATCH", f"/run/{world.runs(task['id'])[0]['id']}", world.root_token,
                   json={"status": "active"}),
        world.call("POST", "/token/container", world.root_token,
                   json={"task_id": task["id"], "image": task["image"]}),
    ]
    for response in checks:
        assert response.status_code in (401, 403), (response.request.url, response.text)
        assert "msg" in response.json()
