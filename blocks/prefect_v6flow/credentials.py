"""Prefect Block holding how to reach and log in to a v6flow server (and, for encrypted
collaborations, the organization's private key)."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr, model_validator

from v6flow.client import AsyncClient, Client, KeySource

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
        private_key: the PEM of the organization's private key, for encrypted collaborations
            (stored encrypted, shown masked; never a flow parameter).
        private_key_path: or the path of that PEM file on the machine that runs the flow.

    Examples:
        Save once, then load it in flows by name:
        >>> V6flowServerCredentials(url="http://127.0.0.1:7601/api", username="root",
        ...                         password="…").save("v6flow-local")      # doctest: +SKIP
        >>> with V6flowServerCredentials.load("v6flow-local").get_client() as client:
        ...     client.collaboration.list()                              # doctest: +SKIP

        With the organization's key, for encrypted collaborations:
        >>> V6flowServerCredentials(url="…", username="alice", password="…",
        ...                         private_key_path="/etc/org.pem").save("enc")  # doctest: +SKIP
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
    private_key: SecretStr | None = Field(
        default=None, description="PEM of the organization's RSA private key, for encrypted "
                                  "collaborations (or give private_key_path).")
    private_key_path: str | None = Field(
        default=None, description="Path of the organization's private key PEM file on the "
                                  "machine that runs the flow (or give private_key).",
        examples=["/etc/v6flow/org.pem"])

    @model_validator(mode="after")
    def _one_key_source(self) -> V6flowServerCredentials:
        if self.private_key is not None and self.private_key_path:
            raise ValueError("give private_key or private_key_path, not both")
        return self

    def key_source(self) -> KeySource | None:
        """The organization's private key as the clients take it (None: none given)."""
        if self.private_key is not None:
            return self.private_key
        return Path(self.private_key_path) if self.private_key_path else None

    def get_client(self) -> Client:
        """A blocking client (use it as a context manager); it carries the private key."""
        return Client(self.url, username=self.username,
                      password=self.password.get_secret_value(), timeout=self.timeout,
                      private_key=self.key_source())

    def get_async_client(self) -> AsyncClient:
        """An asyncio client for flows (``async with``); it carries the private key."""
        return AsyncClient(self.url, username=self.username,
                           password=self.password.get_secret_value(), timeout=self.timeout,
                           private_key=self.key_source())
