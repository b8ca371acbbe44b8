"""Organizations: the parties of a federation."""

from __future__ import annotations

from pydantic import BaseModel, Field

from v6flow.schemas.common import SingleLine


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
