"""Collaborations: organizations that analyse together."""

from __future__ import annotations

from pydantic import BaseModel, Field

from v6flow.schemas.common import Id, SingleLine
from v6flow.schemas.organization import OrganizationIds


class CollaborationCreate(BaseModel):
    """``POST /collaboration``."""

    name: SingleLine = Field(min_length=1, max_length=255)
    organization_ids: list[Id] = Field(default_factory=list)
    encrypted: bool = False


class CollaborationUpdate(BaseModel):
    """``PATCH /collaboration/<id>``: only the keys present are changed.

    ``organization_ids`` replaces the members (it needs collaboration EDIT at global scope).
    """

    name: str | None = Field(default=None, min_length=1, max_length=255)
    encrypted: bool | None = None
    organization_ids: OrganizationIds | None = None


class CollaborationOut(BaseModel):
    """A collaboration with links to its members and what runs in it."""

    id: int
    name: str
    encrypted: bool
    organizations: str
    nodes: str
    tasks: str
    algorithm_stores: str
    studies: str
