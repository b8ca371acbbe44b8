"""Fixtures of the server API tests: one real server per database backend, and a small world.

``api_server`` is parametrized over SQLite and PostgreSQL, so every test that uses it (or
``world``) runs against both backends.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ServerProcess, start_server
from v6flow.wire import input_to_wire, make_input

IMAGE = "v6flow-test/basic:latest"
#: One client for all test requests: building an httpx client (SSL context) per call is slow.
HTTP = httpx.Client(timeout=10)
KEEPALIVE = 0.5  # seconds between ': ping' comments, so test streams notice a close quickly


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def api_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               postgres_databases: Callable[[], str]) -> Iterator[ServerProcess]:
    """A real server on a fresh database of each backend."""
    directory: Path = tmp_path_factory.mktemp(f"api-{request.param}")
    url = (f"sqlite:///{directory}/server.sqlite" if request.param == "sqlite"
           else postgres_databases())
    proc = start_server(database_url=url, root_password=secrets.token_urlsafe(12),
                        log_dir=directory,
                        extra_env={"V6FLOW_SERVER_KEEPALIVE_SECONDS": str(KEEPALIVE)})
    yield proc
    proc.stop()


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def auth(token: str) -> dict[str, str]:
    """Bearer header."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """Three organizations; the first two are in a collaboration with a node each."""

    url: str
    root_token: str
    org_ids: list[int]
    outsider_id: int
    collaboration_id: int
    node_ids: dict[int, int]
    api_keys: dict[int, str]
    researcher_token: str
    _node_tokens: dict[int, str] = field(default_factory=dict)

    def call(self, method: str, path: str, token: str | None = None,
             headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """One request (root token unless another is given)."""
        merged = {**auth(token if token is not None else self.root_token), **(headers or {})}
        return HTTP.request(method, f"{self.url}/{path.lstrip('/')}", headers=merged,
                            timeout=10, **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """A request that must succeed; returns its JSON."""
        response = self.call(method, path, token, **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()

    def node_token(self, org_id: int) -> str:
        """The access token of the node of ``org_id`` (cached)."""
        if org_id not in self._node_tokens:
            body = HTTP.post(f"{self.url}/token/node", json={"api_key": self.api_keys[org_id]},
                             timeout=10).json()
            self._node_tokens[org_id] = body["access_token"]
        return self._node_tokens[org_id]

    def task_body(self, org_ids: list[int] | None = None, *, name: str | None = None,
                  image: str = IMAGE, **extra: Any) -> dict[str, Any]:
        """A valid ``POST /task`` body for the collaboration."""
        targets = org_ids if org_ids is not None else self.org_ids
        wire = input_to_wire(make_input("partial", kwargs={"x": 1}))
        return {"name": name or unique("task"), "image": image, "description": "test",
                "collaboration_id": self.collaboration_id,
                "organizations": [{"id": oid, "input": wire} for oid in targets],
                "databases": [{"label": "default", "query": "select 1"}], **extra}

    def create_task(self, org_ids: list[int] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Create a task as the researcher."""
        response = self.call("POST", "/task", self.researcher_token,
                             json=self.task_body(org_ids, **kwargs))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def runs(self, task_id: int) -> list[dict[str, Any]]:
        """All runs of a task (as root)."""
        return list(self.ok("GET", "/run", params={"task_id": task_id, "per_page": 100})["data"])

    def container_token(self, task: dict[str, Any], org_id: int) -> str:
        """What a node does before it starts a container: PATCH its run, ask for a token."""
        node = self.node_token(org_id)
        run = next(r for r in self.runs(task["id"]) if r["organization"]["id"] == org_id)
        self.ok("PATCH", f"/run/{run['id']}", node, json={"status": "initializing"})
        body = self.ok("POST", "/token/container", node,
                       json={"task_id": task["id"], "image": task["image"]})
        return str(body["container_token"])


def login(url: str, username: str, password: str) -> str:
    """Access token of a user."""
    response = HTTP.post(f"{url}/token/user", json={"username": username, "password": password},
                         timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def build_world(proc: ServerProcess, organizations: int = 3) -> World:
    """Create organizations, a collaboration of all but the last, nodes, and a researcher."""
    root = login(proc.url, "root", proc.root_password)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = HTTP.post(f"{proc.url}{path}", json=body, headers=auth(root), timeout=10)
        assert response.status_code == 201, response.text
        return dict(response.json())

    org_ids = [post("/organization", {"name": unique("org")})["id"] for _ in range(organizations)]
    members, outsider = org_ids[:-1], org_ids[-1]
    collab = post("/collaboration", {"name": unique("collab"), "organization_ids": members,
                                     "encrypted": False})
    node_ids, api_keys = {}, {}
    for oid in members:
        node = post("/node", {"collaboration_id": collab["id"], "organization_id": oid})
        node_ids[oid], api_keys[oid] = node["id"], node["api_key"]
    roles = HTTP.get(f"{proc.url}/role", params={"name": "Researcher"}, headers=auth(root),
                      timeout=10).json()["data"]
    username, password = unique("researcher"), secrets.token_urlsafe(12)
    post("/user", {"username": username, "password": password, "firstname": "Re",
                   "lastname": "Searcher", "organization_id": members[0],
                   "roles": [roles[0]["id"]]})
    return World(url=proc.url, root_token=root, org_ids=members, outsider_id=outsider,
                 collaboration_id=collab["id"], node_ids=node_ids, api_keys=api_keys,
                 researcher_token=login(proc.url, username, password))


@pytest.fixture(scope="session")
def world(api_server: ServerProcess) -> World:
    """A small world per backend, shared: tests isolate themselves by creating their own tasks."""
    return build_world(api_server)
