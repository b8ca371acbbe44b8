"""Roles and rules: what a user may do."""

from __future__ import annotations

from pydantic import BaseModel

from v6flow.schemas.common import Rel


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
