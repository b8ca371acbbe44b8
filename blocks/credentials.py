"""Prefect Block holding how to reach and log in to a v6flow server."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr

from v6flow.client import AsyncClient, Client

from ._project import DOCUMENTATION_URL, LOGO_URL


class V6flowServerCredentials(Block):
    """Server URL and user credentials of a v6flow (vantage6 v4 compatible) server.

    The password is a ``SecretStr``: stored encrypted by Prefect, shown masked in the UI,
    in ``repr`` and in flow-run parameters, unwrapped only when a client logs in; nothing
    here logs it.

    Attributes:
        url: API root of the server.
        username: user to log in as.
        password: that user's password (stored encrypted, shown masked).
        timeout: seconds allowed for each request.

    Examples:
        Save once, then load it in flows by name:
        >>> V6flowServerCredentials(url="http://127.0.0.1:7601/api", username="root",
        ...                         password="…").save("v6flow-local")      # doctest: +SKIP
        >>> with V6flowServerCredentials.load("v6flow-local").get_client() as client:
        ...     client.collaboration.list()                              # doctest: +SKIP
    """

    _block_type_name = "V6flow Server Credentials"
    _description = "URL and user credentials of a v6flow / vantage6 v4 server."
    _documentation_url = HttpUrl(DOCUMENTATION_URL)
    _logo_url = HttpUrl(LOGO_URL)

    url: str = Field(..., description="API root of the server, ending in /api.",
                     pattern=r"^https?://", examples=["http://127.0.0.1:7601/api"])
    username: str = Field(..., min_length=1, description="User name to log in with.",
                          examples=["root"])
    password: SecretStr = Field(..., description="Password of that user.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds allowed for each request.")

    def get_client(self) -> Client:
        """A blocking client (use it as a context manager)."""
        return Client(self.url, username=self.username,
                      password=self.password.get_secret_value(), timeout=self.timeout)

    def get_async_client(self) -> AsyncClient:
        """An asyncio client for flows (``async with``)."""
        return AsyncClient(self.url, username=self.username,
                           password=self.password.get_secret_value(), timeout=self.timeout)
