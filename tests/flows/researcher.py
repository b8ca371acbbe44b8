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

    def federation(self, collaboration_id: int, image: str, **settings: Any) -> Any:
        """The flows' ``Federation`` parameter logging in as this researcher (ad hoc), with
        no retries and a 120 s timeout unless ``settings`` say otherwise."""
        from v6flow_flows.parameters import Federation, ServerParameters

        server = ServerParameters(url=self.url, username=self.username,
                                  password=self.password)  # type: ignore[arg-type]
        return Federation(**{"collaboration_id": collaboration_id, "server": server,
                             "image": image, "retries": 0, "timeout_seconds": 120,
                             **settings})


def make_researcher(federation: Any) -> Researcher:
    """Create a uniquely named researcher in the federation's first organization."""
    username, password = f"researcher-{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    with Client(federation.server_url, username="root",
                password=federation.root_password) as root:
        role = root.role.list(name="Researcher")[0]
        root.user.create(username, password, federation.organization_ids[0],
                         roles=[role.id])
    return Researcher(federation.server_url, username, password)
