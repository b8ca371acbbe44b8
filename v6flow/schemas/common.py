"""Pieces every part of the REST contract shares: ids, error bodies, relations, pages, times.

Error bodies are always ``{"msg": ...}`` (CONTRACT §8); a request that fails validation is
answered 400 with the fields named in ``errors``. Lists are pages ``{"data", "links"}`` whose
``previous``/``next`` links are absent at the edges (CONTRACT §3.3).

Text that is stored comes in three kinds, each refusing what a database or a reader should
never get: :data:`SingleLine` (names: no control character at all), :data:`MultiLine`
(descriptions, queries: newlines and tabs allowed) and :data:`StoredText` (opaque payloads such
as base64 input: no NUL, which PostgreSQL cannot store, and no unpaired surrogate, which no
encoder can write). :data:`DatabaseLabel` is the one definition of a database label, shared by
tasks and the node's settings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PlainSerializer

from v6flow.errors import DeserializationError
from v6flow.wire import format_datetime, parse_datetime

#: The largest id a database row can have (a signed 64-bit integer).
MAX_ID = 2**63 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A database id (1 to 2^63-1).")]
"""An id in a request body: anything outside a 64-bit row id is a 400, never a 500."""

T = TypeVar("T")

_SURROGATE = "\ud800-\udfff"
_NOT_STORABLE = re.compile(f"[\x00{_SURROGATE}]")
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{_SURROGATE}]")
_CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_SURROGATE}]")


def _describe(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"an unpaired surrogate (U+{code:04X})"
    return "a NUL character" if code == 0 else f"the control character U+{code:04X}"


def _refusing(pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise ValueError(f"must not contain {_describe(found.group())} "
                             f"(position {found.start()})")
        return value

    return AfterValidator(check)


SingleLine = Annotated[str, _refusing(_CONTROL), Field(
    json_schema_extra={"pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"})]
"""A name or other one-line text: no control characters (NUL, newline, escape...)."""

MultiLine = Annotated[str, _refusing(_CONTROL_BUT_LINES), Field(
    json_schema_extra={"pattern": "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"})]
"""Free text that may span lines (a description): tab, newline and carriage return only."""

StoredText = Annotated[str, _refusing(_NOT_STORABLE), Field(
    json_schema_extra={"pattern": "^[^\\x00]*$"})]
"""Opaque stored text (base64 input, a result): anything but NUL and unpaired surrogates."""

#: A database label: it becomes the environment variable ``<LABEL>_DATABASE_URI`` in the
#: algorithm container, so a letter or underscore, then letters, digits and underscores.
DATABASE_LABEL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_DATABASE_LABEL = re.compile(DATABASE_LABEL_PATTERN)


def _database_label(value: str) -> str:
    if not _DATABASE_LABEL.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not a database label: a letter or underscore, "
                         "then letters, digits or underscores, at most 64 in all")
    return value


DatabaseLabel = Annotated[str, AfterValidator(_database_label), Field(
    json_schema_extra={"pattern": DATABASE_LABEL_PATTERN, "maxLength": 64})]
"""A database label (``default``, ``patients_2024``), the same for tasks and nodes."""


def is_database_label(value: str) -> bool:
    """Whether ``value`` is a valid database label (for settings that validate themselves)."""
    return _DATABASE_LABEL.fullmatch(value) is not None


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
