"""Users: people who log in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class UserUpdate(BaseModel):
    """``PATCH /user/<id>``: only the fields sent (and not null) change.

    ``roles`` and ``rules`` replace the current ones. A password is changed elsewhere, so an
    unknown field such as ``password`` is a 400 naming it.
    """

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(default=None, min_length=1, max_length=255)
    firstname: str | None = Field(default=None, max_length=255)
    lastname: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, min_length=1, max_length=255)
    organization_id: Id | None = None
    roles: list[Id] | None = None
    rules: list[Id] | None = None


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
