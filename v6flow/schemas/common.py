"""Pieces every part of the REST contract shares: ids, error bodies, relations, pages, times.

Error bodies are always ``{"msg": ...}`` (CONTRACT §8); a request that fails validation is
answered 400 with the fields named in ``errors``. Lists are pages ``{"data", "links"}`` whose
``previous``/``next`` links are absent at the edges (CONTRACT §3.3).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer

from v6flow.errors import DeserializationError
from v6flow.wire import format_datetime, parse_datetime

#: The largest id a database row can have (a signed 64-bit integer).
MAX_ID = 2**63 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A database id (1 to 2^63-1).")]
"""An id in a request body: anything outside a 64-bit row id is a 400, never a 500."""

T = TypeVar("T")


def _wire_datetime(value: Any) -> datetime | None:
    """Accept a datetime or the wire string (with or without µs, ``Z``/``+00:00``)."""
    if value is None or isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value)
        except DeserializationError as exc:
            raise ValueError(str(exc)) from exc
    else:
        raise ValueError("must be an ISO datetime string")
    if moment is not None and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


WireDatetime = Annotated[
    datetime,
    BeforeValidator(_wire_datetime),
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
]
"""A naive-UTC datetime that travels as ISO text with microseconds (v4's format)."""


class Msg(BaseModel):
    """Every error body, and the answer of calls that only report what they did."""

    msg: str = Field(description="What happened, for people.")


class FieldError(BaseModel):
    """One field of a request that failed validation."""

    field: str = Field(description="Dotted path of the field, e.g. 'organizations.0.id'.")
    msg: str
    type: str


class ValidationMsg(Msg):
    """The 400 answer to a request that does not match its schema."""

    errors: list[FieldError] = Field(default_factory=list)


class Rel(BaseModel):
    """A HATEOAS relation to another resource (CONTRACT §3.4)."""

    id: int
    link: str
    methods: list[str] = Field(default_factory=list)


def _absent_when_none(value: Any) -> bool:
    return value is None


class PageLinks(BaseModel):
    """Relative links of a page; ``previous``/``next`` are left out at the edges."""

    first: str
    self: str
    last: str
    previous: str | None = Field(default=None, exclude_if=_absent_when_none)
    next: str | None = Field(default=None, exclude_if=_absent_when_none)


class Page(BaseModel, Generic[T]):
    """One page of a listing (the total is in the ``total-count`` header)."""

    data: list[T]
    links: PageLinks
