"""Parameters every flow shares, and where a flow's connection to the federation comes from.

A flow reaches the server in one of three ways, tried in this order:

1. ``server``: URL and login given as flow parameters (ad-hoc runs, the demo);
2. ``credentials_block``: the name of a saved :class:`blocks.V6flowServerCredentials`
   (deployments);
3. neither, inside a node's algorithm container: the node proxy with the container token
   (the flow runs as a vantage6-style central task, :mod:`v6flow.algorithm.central`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr

from blocks.credentials import V6flowServerCredentials
from v6flow.algorithm.central import ContainerConnection, in_algorithm_container
from v6flow.prefect import AsyncClientFactory

PositiveId = Annotated[int, Field(ge=1)]


class ServerParameters(BaseModel):
    """Server and login given as flow parameters (instead of a saved credentials Block)."""

    url: str = Field(..., pattern=r"^https?://", description="API root, ending in /api.")
    username: str = Field(..., min_length=1)
    password: SecretStr

    def credentials(self) -> V6flowServerCredentials:
        """The same as an (unsaved) credentials Block."""
        return V6flowServerCredentials(url=self.url, username=self.username,
                                       password=self.password)


class DatabaseRequest(BaseModel):
    """One database a task asks the nodes for."""

    label: str = Field(default="default", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    query: str | None = None
    sheet_name: str | None = None

    def wire(self) -> dict[str, Any]:
        """The ``databases[]`` item of ``POST /task``."""
        return self.model_dump(exclude_none=True)


async def resolve_connection(server: ServerParameters | None,
                             credentials_block: str | None) -> AsyncClientFactory:
    """The flow's way to the federation (see the module docstring for the order).

    Raises:
        ValueError: no ``server``, no ``credentials_block``, and not in an algorithm container.
    """
    if server is not None:
        return server.credentials()
    if credentials_block is not None:
        block: V6flowServerCredentials = await V6flowServerCredentials.aload(credentials_block)
        return block
    if in_algorithm_container():
        return ContainerConnection.from_environ()
    raise ValueError("give either 'server' or 'credentials_block' (only a flow that runs as a "
                     "central task in a node container may leave both out)")
