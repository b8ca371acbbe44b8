"""Organizations: the parties of a federation."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OrganizationCreate(BaseModel):
    """``POST /organization``."""

    name: str = Field(min_length=1, max_length=255)
    domain: str | None = Field(default=None, max_length=255)
    address1: str | None = Field(default=None, max_length=255)
    address2: str | None = Field(default=None, max_length=255)
    zipcode: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=255)
    public_key: str | None = None


class OrganizationUpdate(BaseModel):
    """``PATCH /organization/<id>``: only the keys present are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    domain: str | None = Field(default=None, max_length=255)
    address1: str | None = Field(default=None, max_length=255)
    address2: str | None = Field(default=None, max_length=255)
    zipcode: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=255)
    public_key: str | None = None


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
