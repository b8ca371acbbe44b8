"""Studies: some organizations of one collaboration that analyse together."""

from __future__ import annotations

from pydantic import BaseModel, Field

from v6flow.schemas.common import Id, Rel
from v6flow.schemas.organization import OrganizationIds, OrganizationOut


class StudyCreate(BaseModel):
    """``POST /study``: every organization must be a member of the collaboration."""

    name: str = Field(min_length=1, max_length=255)
    collaboration_id: Id
    organization_ids: OrganizationIds = Field(min_length=1)


class StudyUpdate(BaseModel):
    """``PATCH /study/<id>``: only the keys present are changed.

    ``organization_ids`` replaces the members (it needs study EDIT at collaboration scope).
    """

    name: str | None = Field(default=None, min_length=1, max_length=255)
    organization_ids: OrganizationIds | None = None


class StudyOut(BaseModel):
    """A study; ``organizations`` is a link, or the organizations themselves when included
    (``include=organizations``, and always in the answer to a create or an update)."""

    id: int
    name: str
    collaboration: Rel
    organizations: str | list[OrganizationOut]
    tasks: str
