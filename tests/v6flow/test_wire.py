"""Round trips of the wire formats in v6flow.wire (each encoder against its decoder)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from v6flow import wire
from v6flow.errors import DeserializationError

ENV_VALUES = [
    "abc", "", "/mnt/data/task-000000042/input", "http://127.0.0.1", "8080", "db1,db2",
    "SELECT * FROM t WHERE x = 'é'", "MFRGG!!!", "ABCDEFGH", "ünïcødé ✓", "a" * 1000,
]


def test_env_value_matches_reference_example() -> None:
    """'abc' encodes to the contract's example 'MFRGG!!!' (base32, '=' → '!')."""
    assert wire.encode_env_value("abc") == "MFRGG!!!"
    assert wire.decode_env_value("MFRGG!!!") == "abc"


@pytest.mark.parametrize("value", ENV_VALUES)
def test_env_value_round_trip(value: str) -> None:
    """decode(encode(v)) == v, and the encoding is base32 with '!' padding."""
    encoded = wire.encode_env_value(value)
    assert "=" not in encoded
    assert base64.b32decode(encoded.replace("!", "=")).decode() == value
    assert wire.decode_env_value(encoded) == value


@pytest.mark.parametrize("plain", [
    "/usr/local/bin:/usr/bin", "/root", "http://proxyserver", "default", "csv", "1.5",
    "C.UTF-8", "xterm-256color", "lower-case-value",
])
def test_non_base32_values_are_left_unchanged(plain: str) -> None:
    """Values that are not valid base32 come back as they are (like v4's get_env_var)."""
    assert wire.decode_env_value(plain) == plain


def test_env_mapping_round_trip() -> None:
    """encode_env/decode_env invert each other over a whole mapping."""
    env = {f"K{i}": value for i, value in enumerate(ENV_VALUES)}
    encoded = wire.encode_env(env)
    assert encoded.keys() == env.keys()
    assert all(encoded[k] == wire.encode_env_value(v) for k, v in env.items())
    assert wire.decode_env(encoded) == env


@pytest.mark.parametrize("data", [b"", b"\x00\xff" * 10, "héllo".encode(), bytes(range(256))])
def test_base64_round_trip(data: bytes) -> None:
    """b64decode_str(b64encode_str(b)) == b, with standard padded base64."""
    text = wire.b64encode_str(data)
    assert text == base64.b64encode(data).decode()
    assert wire.b64decode_str(text) == data


@pytest.mark.parametrize("bad", ["not base64!", "abc", "ü"])
def test_base64_rejects_garbage(bad: str) -> None:
    """Invalid base64 raises DeserializationError, not binascii.Error."""
    with pytest.raises(DeserializationError):
        wire.b64decode_str(bad)


@pytest.mark.parametrize("value", [
    None, 0, -1.5, "text", [1, "two", None], {"nested": {"list": [1, 2, {"x": True}]}},
    {"unicode": "ünï ✓"},
])
def test_json_bytes_round_trip(value: object) -> None:
    """json_from_bytes(json_to_bytes(v)) == v; the bytes are what json.dumps writes."""
    data = wire.json_to_bytes(value)
    assert data == json.dumps(value).encode("utf-8")
    assert wire.json_from_bytes(data) == value


def test_json_to_bytes_rejects_non_json() -> None:
    """A set is not JSON: DeserializationError names the problem."""
    with pytest.raises(DeserializationError, match="not JSON-serialisable"):
        wire.json_to_bytes({1, 2})


@pytest.mark.parametrize("data", [b"{", b"\xff\xfe", b"nan-ish"])
def test_json_from_bytes_rejects_garbage(data: bytes) -> None:
    """Bytes that are not UTF-8 JSON raise DeserializationError."""
    with pytest.raises(DeserializationError):
        wire.json_from_bytes(data)


def test_input_round_trip() -> None:
    """An algorithm input survives input_to_wire → input_from_wire, as base64 JSON."""
    input_ = wire.make_input("column_stats", [1, "a"], {"column": "age", "opts": [1.5]})
    text = wire.input_to_wire(input_)
    assert json.loads(base64.b64decode(text)) == input_
    assert wire.input_from_wire(text) == input_


def test_make_input_defaults() -> None:
    """make_input fills empty args and kwargs like v4's wrapper defaults."""
    assert wire.make_input("echo") == {"method": "echo", "args": [], "kwargs": {}}


def test_input_from_wire_requires_an_object() -> None:
    """A JSON list is not an algorithm input."""
    with pytest.raises(DeserializationError):
        wire.input_from_wire(wire.b64encode_str(b"[1, 2]"))


@pytest.mark.parametrize("value", [{"count": 3, "sum": 6.5}, [1, 2], "x", None])
def test_result_round_trip(value: object) -> None:
    """result_from_wire(result_to_wire(json bytes)) gives back the returned value."""
    assert wire.result_from_wire(wire.result_to_wire(wire.json_to_bytes(value))) == value


@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 24, 15, 28, 52, 326128),
    datetime(2026, 1, 1, 0, 0, 0),
    datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 6, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
])
def test_datetime_round_trip(moment: datetime) -> None:
    """format_datetime always writes microseconds; parse_datetime gives naive UTC back."""
    text = wire.format_datetime(moment)
    assert len(text.split(".")[-1]) == 6
    expected = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    assert wire.parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["2026-11-24T15:28:52", "2026-11-24T15:28:52Z",
                                  "2026-11-24T15:28:52.000000+00:00"])
def test_parse_datetime_accepts_variants(text: str) -> None:
    """With or without microseconds, 'Z' or '+00:00': the same moment."""
    assert wire.parse_datetime(text) == datetime(2026, 11, 24, 15, 28, 52)


def test_parse_datetime_rejects_garbage() -> None:
    """Not a datetime: DeserializationError."""
    with pytest.raises(DeserializationError):
        wire.parse_datetime("yesterday")


def test_utcnow_is_naive_and_formats() -> None:
    """utcnow() is naive and survives a format/parse round trip."""
    now = wire.utcnow()
    assert now.tzinfo is None
    assert wire.parse_datetime(wire.format_datetime(now)) == now
