"""Roles and rules: what a user may do."""

from __future__ import annotations

from pydantic import BaseModel, Field

from v6flow.schemas.common import Id, Rel


class RoleCreate(BaseModel):
    """``POST /role``: a custom role of an organization (the caller's when not given)."""

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=4096)
    rules: list[Id] | None = Field(default=None, description="Rule ids; null means none.")
    organization_id: Id | None = None


class RoleUpdate(BaseModel):
    """``PATCH /role/<id>``: null or absent fields are left as they are (the v4 client sends
    nulls for what it does not change); ``rules`` replaces the role's rules."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=4096)
    rules: list[Id] | None = None


class RoleOut(BaseModel):
    """A named bundle of rules; ``organization`` is null for a global role."""

    id: int
    name: str
    description: str | None = None
    organization: Rel | None = None
    rules: str
    users: str


class RuleOut(BaseModel):
    """One permission; ``operation`` and ``scope`` are printed as names (``VIEW``, ``GLOBAL``)."""

    id: int
    name: str
    description: str | None = None
    operation: str
    scope: str
