"""Client login, refresh and error mapping against the real server."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import httpx
import pytest

from v6flow.client import AsyncClient, Client
from v6flow.client import _ops as ops
from v6flow.errors import AuthenticationError, BadRequest, NotFound, ServerError


def _raw_msg(response: httpx.Response) -> str:
    return str(response.json()["msg"])


def test_login_and_whoami(server: Any, root: Client) -> None:
    """Logging in gives tokens, and the token's subject is the root user."""
    # Execute
    root.login()
    me = root.whoami()
    # Assert
    assert me.username == "root"
    assert root.auth.access_token and root.auth.refresh_token


def test_wrong_password_is_authentication_error_with_server_msg(server: Any) -> None:
    """A refused login raises AuthenticationError carrying the server's own msg."""
    # Prepare
    raw = httpx.post(f"{server.url}/token/user", json={"username": "root", "password": "nope"})
    # Execute
    with Client(server.url, username="root", password="nope") as client, \
            pytest.raises(AuthenticationError) as caught:
        client.organization.list()
    # Assert
    assert raw.status_code == 401
    assert caught.value.msg == _raw_msg(raw)
    assert caught.value.status_code == 401


def test_refused_access_token_is_refreshed(root: Client) -> None:
    """A 401 on an expired/foreign access token triggers one refresh, then succeeds."""
    # Prepare
    root.login()
    refresh_before = root.auth.refresh_token
    root.auth.access_token = "not-a-valid-token"
    # Execute
    organizations = root.organization.list()
    # Assert
    assert organizations
    assert root.auth.access_token != "not-a-valid-token"
    assert root.auth.refresh_token is not None and refresh_before is not None


def test_token_only_client_without_refresh_raises(server: Any) -> None:
    """With only a bad access token there is nothing to renew: AuthenticationError."""
    # Execute / Assert
    with Client(server.url, token="bad") as client, pytest.raises(AuthenticationError):
        client.organization.list()


def test_not_found_carries_server_msg(server: Any, root: Client) -> None:
    """404 maps to NotFound with the server's msg."""
    # Prepare
    root.login()
    raw = httpx.get(f"{server.url}/organization/987654321",
                    headers={"Authorization": f"Bearer {root.auth.access_token}"})
    # Execute
    with pytest.raises(NotFound) as caught:
        root.organization.get(987654321)
    # Assert
    assert raw.status_code == 404
    assert caught.value.msg == _raw_msg(raw)


def test_bad_request_for_foreign_organization(root: Client, researcher: Client,
                                             world: Any) -> None:
    """A task for an organization outside the collaboration is a BadRequest (400)."""
    # Prepare
    outsider = root.organization.create(f"outsider-{uuid.uuid4().hex[:8]}")
    # Execute
    with pytest.raises(BadRequest) as caught:
        researcher.task.create(world.collaboration_id, [outsider.id], "v6flow-test/x", "m")
    # Assert
    assert caught.value.status_code == 400
    assert caught.value.msg


def test_unreachable_server_is_server_error() -> None:
    """A refused connection becomes ServerError, not an httpx exception."""
    # Prepare
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Execute / Assert
    with Client(f"http://127.0.0.1:{port}/api", token="x", timeout=2) as client, \
            pytest.raises(ServerError):
        client.organization.list()


def test_listing_follows_every_page(root: Client, world: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With one item per page the listing still returns every organization."""
    # Prepare
    everything = root.organization.list()
    monkeypatch.setattr(ops, "PER_PAGE", 1)
    # Execute
    paged = root.organization.list()
    # Assert
    assert [o.id for o in paged] == [o.id for o in everything]
    assert len(paged) >= 3


def test_resources_create_and_read_back(server: Any, root: Client, world: Any) -> None:
    """Users, nodes and collaborations created through the client read back the same."""
    # Prepare
    name = f"user-{uuid.uuid4().hex[:8]}"
    # Execute
    user = root.user.create(name, "Secret-pass-123!", world.organization_ids[0])
    nodes = root.node.list(collaboration_id=world.collaboration_id)
    collaboration = root.collaboration.get(world.collaboration_id)
    # Assert
    assert root.user.get(user.id).username == name
    assert {n.organization.id for n in nodes} == set(world.organization_ids)
    assert root.node.get(nodes[0].id).id == nodes[0].id
    assert collaboration.id == world.collaboration_id
    members = root.organization.list(collaboration_id=world.collaboration_id)
    assert {o.id for o in members} == set(world.organization_ids)


async def test_async_client_logs_in_and_maps_errors(server: Any) -> None:
    """The async twin shares auth and error mapping."""
    # Execute
    async with AsyncClient(server.url, username="root",
                           password=server.root_password) as client:
        me = await client.whoami()
        with pytest.raises(NotFound):
            await client.organization.get(987654321)
    # Assert
    assert me.username == "root"
