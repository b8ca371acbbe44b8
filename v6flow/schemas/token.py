"""Logins and tokens: ``/token/user``, ``/token/node``, ``/token/refresh``, ``/token/container``."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from v6flow.schemas.common import Id, SingleLine, StoredText


class UserLogin(BaseModel):
    """``POST /token/user``."""

    username: SingleLine = Field(min_length=1, max_length=255)
    password: StoredText = Field(min_length=1, max_length=1024)
    mfa_code: SingleLine | None = Field(default=None, max_length=16)


class NodeLogin(BaseModel):
    """``POST /token/node``: the API key must be a UUID."""

    api_key: UUID


class ContainerTokenRequest(BaseModel):
    """``POST /token/container`` (sent by a node for the container it is about to start)."""

    task_id: Id
    image: SingleLine = Field(min_length=1, max_length=1024)


class TokenPairOut(BaseModel):
    """A login or refresh: an access token, a refresh token and where to refresh it.

    ``user_url`` is set for users, ``node_url`` for nodes.
    """

    access_token: str
    refresh_token: str
    refresh_url: str
    user_url: str | None = None
    node_url: str | None = None


class ContainerTokenOut(BaseModel):
    """``POST /token/container``."""

    container_token: str
