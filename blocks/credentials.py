"""Prefect Block holding how to reach and log in to a v6flow server."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from v6flow.client import AsyncClient, Client


class V6flowServerCredentials(Block):
    """Server URL and user credentials of a v6flow (vantage6 v4 compatible) server.

    Attributes:
        url: API root of the server.
        username: user to log in as.
        password: that user's password (stored encrypted, shown masked).

    Examples:
        Save once, then load it in flows by name:
        >>> V6flowServerCredentials(url="http://127.0.0.1:7601/api", username="root",
        ...                         password="…").save("v6flow-local")      # doctest: +SKIP
        >>> with V6flowServerCredentials.load("v6flow-local").get_client() as client:
        ...     client.collaboration.list()                              # doctest: +SKIP
    """

    _block_type_name = "V6flow Server Credentials"
    _description = "URL and user credentials of a v6flow / vantage6 v4 server."

    url: str = Field(..., description="API root of the server, ending in /api.",
                     examples=["http://127.0.0.1:7601/api"])
    username: str = Field(..., description="User name to log in with.", examples=["root"])
    password: SecretStr = Field(..., description="Password of that user.")
    timeout: float = Field(default=30.0, description="Seconds allowed for each request.")

    def get_client(self) -> Client:
        """A blocking client (use it as a context manager)."""
        return Client(self.url, username=self.username,
                      password=self.password.get_secret_value(), timeout=self.timeout)

    def get_async_client(self) -> AsyncClient:
        """An asyncio client for flows (``async with``)."""
        return AsyncClient(self.url, username=self.username,
                           password=self.password.get_secret_value(), timeout=self.timeout)
