"""Wire formats of the vantage6 v4 contract, as symmetric pure functions.

Every encoder here has its decoder beside it, and each pair has a round-trip test
(tests/v6flow/test_wire.py). Nothing in this module does I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from v6flow.errors import DeserializationError

#: vantage6 replaces base32 padding ``=`` by ``!`` so the value is shell-safe.
ENV_EQUALS_REPLACEMENT = "!"

#: Datetime format the reference server accepts on PATCH /run (microseconds mandatory).
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def encode_env_value(value: str) -> str:
    """Encode an environment value like the reference node: base32 of UTF-8, ``=`` → ``!``."""
    return base64.b32encode(value.encode("utf-8")).decode("ascii").replace(
        "=", ENV_EQUALS_REPLACEMENT
    )


def decode_env_value(value: str) -> str:
    """Decode an env value encoded by :func:`encode_env_value`.

    Values that are not valid base32 are returned unchanged, exactly like the reference
    ``get_env_var``, so plain values set by hand still work.
    """
    try:
        raw = base64.b32decode(value.replace(ENV_EQUALS_REPLACEMENT, "="), casefold=False)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return value


def encode_env(env: dict[str, str]) -> dict[str, str]:
    """Encode every value of an environment mapping."""
    return {key: encode_env_value(value) for key, value in env.items()}


def decode_env(env: dict[str, str]) -> dict[str, str]:
    """Decode every value of an environment mapping (inverse of :func:`encode_env`)."""
    return {key: decode_env_value(value) for key, value in env.items()}


def b64encode_str(data: bytes) -> str:
    """Standard base64 with padding, as text."""
    return base64.b64encode(data).decode("ascii")


def b64decode_str(text: str) -> bytes:
    """Inverse of :func:`b64encode_str`; raises DeserializationError on bad input."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise DeserializationError(f"not valid base64: {exc}") from exc


def json_to_bytes(value: Any) -> bytes:
    """Serialise a JSON value to UTF-8 bytes (the payload of inputs and results)."""
    try:
        return json.dumps(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise DeserializationError(f"value is not JSON-serialisable: {exc}") from exc


def json_from_bytes(data: bytes) -> Any:
    """Parse UTF-8 JSON bytes; raises DeserializationError with the reason."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeserializationError(f"payload is not UTF-8 JSON: {exc}") from exc


def make_input(method: str, args: list[Any] | None = None,
               kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the v4 algorithm input ``{"method", "args", "kwargs"}``."""
    return {"method": method, "args": list(args or []), "kwargs": dict(kwargs or {})}


def input_to_wire(input_: dict[str, Any]) -> str:
    """Encode an algorithm input for ``organizations[].input`` (unencrypted: base64 JSON)."""
    return b64encode_str(json_to_bytes(input_))


def input_from_wire(text: str) -> dict[str, Any]:
    """Decode ``organizations[].input`` back into the input dict."""
    value = json_from_bytes(b64decode_str(text))
    if not isinstance(value, dict):
        raise DeserializationError("algorithm input must be a JSON object")
    return value


def result_to_wire(result_bytes: bytes) -> str:
    """Encode the raw bytes of an OUTPUT_FILE for ``PATCH /run`` (unencrypted: base64)."""
    return b64encode_str(result_bytes)


def result_from_wire(text: str) -> Any:
    """Decode a run ``result`` string into the JSON value the algorithm returned."""
    return json_from_bytes(b64decode_str(text))


#: Tag and version of the authenticated encryption scheme (:mod:`v6flow.crypto`): the first
#: part of its envelopes and of their associated data.
AEAD_TAG = "v6flow-aead-1"
#: What separates the parts of v4's ``key$iv$body`` (CONTRACT §5).
V4_SEPARATOR = "$"


class Scheme(StrEnum):
    """How an input or result string is written (:mod:`v6flow.crypto` has the details)."""

    PLAIN = "plain"
    V4 = "v4"
    AEAD = AEAD_TAG


def scheme_of(text: str) -> Scheme:
    """Which scheme ``text`` is written in, by its form only (no key, nothing checked).

    ``v6flow-aead-1.`` starts an authenticated envelope (``-`` and ``.`` are not base64),
    a ``$`` marks v4's ``key$iv$body`` (not base64 either), anything else is plain base64.
    """
    if text.startswith(AEAD_TAG + "."):
        return Scheme.AEAD
    if V4_SEPARATOR in text:
        return Scheme.V4
    return Scheme.PLAIN


def format_datetime(moment: datetime) -> str:
    """Naive-UTC ISO string that always carries microseconds (fixes the v4 PATCH 500)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(DATETIME_FORMAT)


def parse_datetime(text: str) -> datetime:
    """Parse what :func:`format_datetime` writes, also accepting ``+00:00``/``Z`` and no µs."""
    cleaned = text.strip().removesuffix("Z").removesuffix("+00:00")
    try:
        return datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise DeserializationError(f"not an ISO datetime: {text!r}") from exc


def utcnow() -> datetime:
    """Naive UTC now, the datetime convention of the wire."""
    return datetime.now(UTC).replace(tzinfo=None)
