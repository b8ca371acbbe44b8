"""Organizations: the parties of a federation."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from v6flow.schemas.common import Id, SingleLine


def _no_repeats(ids: list[int]) -> list[int]:
    """Refuse a list that names an organization twice."""
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"organization ids must be unique; repeated: {repeated}")
    return ids


OrganizationIds = Annotated[list[Id], AfterValidator(_no_repeats)]
"""The organizations of a collaboration or a study: ids, each at most once."""


class OrganizationCreate(BaseModel):
    """``POST /organization``."""

    name: SingleLine = Field(min_length=1, max_length=255)
    domain: SingleLine | None = Field(default=None, max_length=255)
    address1: SingleLine | None = Field(default=None, max_length=255)
    address2: SingleLine | None = Field(default=None, max_length=255)
    zipcode: SingleLine | None = Field(default=None, max_length=64)
    country: SingleLine | None = Field(default=None, max_length=255)
    public_key: SingleLine | None = None


class OrganizationUpdate(BaseModel):
    """``PATCH /organization/<id>``: only the keys present are changed."""

    name: SingleLine | None = Field(default=None, min_length=1, max_length=255)
    domain: SingleLine | None = Field(default=None, max_length=255)
    address1: SingleLine | None = Field(default=None, max_length=255)
    address2: SingleLine | None = Field(default=None, max_length=255)
    zipcode: SingleLine | None = Field(default=None, max_length=64)
    country: SingleLine | None = Field(default=None, max_length=255)
    public_key: SingleLine | None = None


class OrganizationOut(BaseModel):
    """An organization; ``public_key`` is base64 of its PEM, or ``""`` when none is set."""

    id: int
    name: str
    domain: str | None = None
    address1: str | None = None
    address2: str | None = None
    zipcode: str | None = None
    country: str | None = None
    public_key: str = ""
    collaborations: str
    nodes: str
    users: str
    tasks: str
    runs: str
    studies: str


class OrganizationRef(BaseModel):
    """``{"id"}``: the organization to add to or remove from a collaboration or a study."""

    id: Id
