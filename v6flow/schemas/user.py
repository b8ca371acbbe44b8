"""Users: people who log in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from v6flow.schemas.common import Id, Rel, SingleLine, StoredText, WireDatetime


class UserCreate(BaseModel):
    """``POST /user``; ``roles`` and ``rules`` are ids."""

    username: SingleLine = Field(min_length=1, max_length=255)
    password: StoredText = Field(min_length=8, max_length=1024)
    firstname: SingleLine | None = Field(default=None, max_length=255)
    lastname: SingleLine | None = Field(default=None, max_length=255)
    email: SingleLine | None = Field(default=None, max_length=255)
    organization_id: Id | None = None
    roles: list[Id] = Field(default_factory=list)
    rules: list[Id] = Field(default_factory=list)


class UserOut(BaseModel):
    """A user (never the password hash or a second-factor secret)."""

    id: int
    username: str
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    type: Literal["user"] = "user"
    ip: str | None = None
    last_seen: WireDatetime | None = None
    status: str | None = None
    organization: Rel
    roles: str
    rules: str
