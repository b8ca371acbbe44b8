"""Client test fixtures: a root client and a small world (orgs, collaboration, hand nodes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.v6flow.client.nodesim import HandNode
from v6flow.client import Client


@pytest.fixture(scope="module")
def root(server: Any) -> Iterator[Client]:
    """A blocking client logged in as root."""
    with Client(server.url, username="root", password=server.root_password) as client:
        yield client


@dataclass
class World:
    """Two organizations in one collaboration, each with a hand-driven node, and a
    researcher (a user of the first organization: v4 lets only members create tasks)."""

    collaboration_id: int
    organization_ids: list[int]
    nodes: dict[int, HandNode]
    username: str
    password: str


@pytest.fixture(scope="module")
def world(server: Any, root: Client) -> Iterator[World]:
    """Fresh, uniquely named organizations, collaboration and nodes."""
    tag = uuid.uuid4().hex[:8]
    orgs = [root.organization.create(f"org-{tag}-{i}").id for i in range(2)]
    collaboration = root.collaboration.create(f"collab-{tag}", orgs)
    cid = collaboration.id
    nodes = {}
    for org in orgs:
        created = root.node.create(cid, org, name=f"node-{tag}-{org}")
        nodes[org] = HandNode(server.url, created.api_key, org)
    researcher_role = root.role.list(name="Researcher")[0]
    username, password = f"researcher-{tag}", f"Pw-{uuid.uuid4().hex}"
    root.user.create(username, password, orgs[0], roles=[researcher_role.id])
    yield World(cid, orgs, nodes, username, password)
    for node in nodes.values():
        node.close()


@pytest.fixture(scope="module")
def researcher(server: Any, world: World) -> Iterator[Client]:
    """A blocking client logged in as the world's researcher."""
    with Client(server.url, username=world.username, password=world.password) as client:
        yield client
