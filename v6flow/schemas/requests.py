"""Request bodies of the v4-compatible REST API.

Unknown keys are ignored (v4 clients send a few extras such as ``server_url``), except in
``databases`` items, where v4 allows only ``label/query/sheet_name/preprocessing/arguments``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from v6flow.errors import DeserializationError
from v6flow.status import RunStatus
from v6flow.wire import parse_datetime


class UserLogin(BaseModel):
    """``POST /token/user``."""

    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    mfa_code: str | None = None


class NodeLogin(BaseModel):
    """``POST /token/node``: the API key must be a UUID."""

    api_key: UUID


class ContainerTokenRequest(BaseModel):
    """``POST /token/container`` (sent by a node for the container it is about to start)."""

    task_id: int
    image: str


class OrganizationCreate(BaseModel):
    """``POST /organization``."""

    name: str = Field(min_length=1, max_length=255)
    domain: str | None = None
    address1: str | None = None
    address2: str | None = None
    zipcode: str | None = None
    country: str | None = None
    public_key: str | None = None


class OrganizationUpdate(BaseModel):
    """``PATCH /organization/<id>``: only the keys present are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    domain: str | None = None
    address1: str | None = None
    address2: str | None = None
    zipcode: str | None = None
    country: str | None = None
    public_key: str | None = None


class CollaborationCreate(BaseModel):
    """``POST /collaboration``."""

    name: str = Field(min_length=1, max_length=255)
    organization_ids: list[int] = Field(default_factory=list)
    encrypted: bool = False


class NodeCreate(BaseModel):
    """``POST /node``; the organization defaults to the caller's."""

    collaboration_id: int
    organization_id: int | None = None
    name: str | None = Field(default=None, min_length=1, max_length=255)


class UserCreate(BaseModel):
    """``POST /user``; ``roles`` and ``rules`` are ids."""

    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=8)
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    organization_id: int | None = None
    roles: list[int] = Field(default_factory=list)
    rules: list[int] = Field(default_factory=list)


class DatabaseSpec(BaseModel):
    """One ``databases`` item of a task."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1)
    query: str | None = None
    sheet_name: str | None = None
    preprocessing: list[dict[str, Any]] | None = None
    arguments: dict[str, Any] | None = None


class OrganizationInput(BaseModel):
    """One target organization of a task with its (possibly encrypted) input."""

    id: int
    input: str = ""


class TaskCreate(BaseModel):
    """``POST /task``."""

    image: str = Field(min_length=1)
    organizations: list[OrganizationInput] = Field(min_length=1)
    collaboration_id: int | None = None
    study_id: int | None = None
    store_id: int | None = None
    name: str | None = None
    description: str | None = None
    databases: list[DatabaseSpec] = Field(default_factory=list)

    @field_validator("databases", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        """``null`` means no databases."""
        return [] if value is None else value


def _parse_wire_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO datetime string")
    try:
        moment = parse_datetime(value)
    except DeserializationError as exc:
        raise ValueError(str(exc)) from exc
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class RunUpdate(BaseModel):
    """``PATCH /run/<id>``: only the keys present in the body are changed."""

    status: RunStatus | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None
    log: str | None = None

    @field_validator("started_at", "finished_at", mode="before")
    @classmethod
    def _wire_datetime(cls, value: Any) -> datetime | None:
        """Accept the wire format with or without microseconds and ``+00:00``/``Z``."""
        return _parse_wire_datetime(value)


class RunLogLines(BaseModel):
    """``POST /run/<id>/log``: live log lines of a running algorithm."""

    lines: list[str]


class KillTask(BaseModel):
    """``POST /kill/task``."""

    id: int


class KillNodeTasks(BaseModel):
    """``POST /kill/node/tasks``."""

    id: int
