"""The batch-import file of ``v6flow server import`` (docs/import.md has a complete example).

Entries refer to each other by name: a collaboration lists organization names, a user names
its organization and roles, a node names its organization and collaboration. Names may refer
to rows already in the database. Unknown keys are refused. Indices in error messages are
0-based (``users[3]`` is the fourth user).
"""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from v6flow.schemas.organization import OrganizationCreate

NAME = Field(min_length=1, max_length=255)
MIN_PASSWORD, MAX_PASSWORD = 8, 1024


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganizationEntry(OrganizationCreate):
    """An organization: the fields of ``POST /organization``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("public_key")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value:
            try:
                base64.b64decode(value.encode("ascii"), validate=True)
            except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
                raise ValueError("must be the base64 encoding of a PEM public key") from exc
        return value


class CollaborationEntry(_Entry):
    """A collaboration of organizations named in this file or already in the database."""

    name: str = NAME
    encrypted: bool = Field(False, description="Whether task input/results are encrypted")
    organizations: list[str] = Field(default_factory=list, description="Member names")


class UserEntry(_Entry):
    """A user of one organization, with roles by name (default roles or the organization's)."""

    username: str = NAME
    password: SecretStr = Field(description="Checked against the API's password rules")
    organization: str = NAME
    roles: list[str] = Field(default_factory=list)
    firstname: str | None = Field(default=None, max_length=255)
    lastname: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=255)

    @field_validator("password")
    @classmethod
    def _length(cls, value: SecretStr) -> SecretStr:
        """The same bounds as ``POST /user`` (its model is checked again per user)."""
        if not MIN_PASSWORD <= len(value.get_secret_value()) <= MAX_PASSWORD:
            raise ValueError(f"must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        return value


class NodeEntry(_Entry):
    """The node of one organization in one collaboration."""

    organization: str = NAME
    collaboration: str = NAME
    name: str | None = Field(default=None, min_length=1, max_length=255,
                             description="Default: '<collaboration> - <organization> Node'")


class ImportFile(_Entry):
    """The whole import file; every list is optional."""

    organizations: list[OrganizationEntry] = Field(default_factory=list)
    collaborations: list[CollaborationEntry] = Field(default_factory=list)
    users: list[UserEntry] = Field(default_factory=list)
    nodes: list[NodeEntry] = Field(default_factory=list)
