"""A researcher in the federation's first organization (v4 lets only members create tasks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from v6flow.client import Client


@dataclass(frozen=True)
class Researcher:
    """Login of a user with the Researcher role."""

    url: str
    username: str
    password: str


def make_researcher(federation: Any) -> Researcher:
    """Create a uniquely named researcher in the federation's first organization."""
    username, password = f"researcher-{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    with Client(federation.server_url, username="root",
                password=federation.root_password) as root:
        role = root.role.list(name="Researcher")[0]
        root.user.create(username, password, federation.organization_ids[0],
                         roles=[role.id])
    return Researcher(federation.server_url, username, password)
