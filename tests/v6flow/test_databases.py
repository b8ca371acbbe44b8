"""The shared database types and URL helpers (v6flow.databases): round trips and redaction."""

from __future__ import annotations

import pytest

from v6flow.databases import (
    DatabaseType,
    host_and_port,
    parse_type,
    redact,
    split_password,
    with_host,
    with_password,
)

URLS = [
    "postgresql://reader@db.example:5432/cohort",
    "postgresql+psycopg://reader@10.0.0.5/cohort?sslmode=require",
    "mysql+pymysql://u@[2001:db8::1]:3306/x",
    "https://user@sparql.example/query",
    "http://sparql.example:7878/query",
]
PASSWORDS = ["s3cret", "p@ss:w/rd%", "ünï cødé", "a" * 200, "with?query&and#hash"]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("password", PASSWORDS)
def test_password_round_trip(url: str, password: str) -> None:
    """split_password(with_password(u, p)) gives back u and p; redact hides p."""
    combined = with_password(url, password)
    assert split_password(combined) == (url, password)
    assert password not in redact(combined) and "***" in redact(combined)
    assert host_and_port(combined) == host_and_port(url)


@pytest.mark.parametrize("url", URLS)
def test_url_without_password_is_left_alone(url: str) -> None:
    """A URL without a password comes back unchanged from split_password and redact."""
    assert split_password(url) == (url, None)
    assert redact(url) == url


def test_with_host_keeps_user_path_and_query() -> None:
    """with_host swaps host and port only."""
    url = "postgresql+psycopg://reader@10.0.0.5:6543/cohort?sslmode=require"
    assert with_host(url, "127.100.0.1", 6543) == (
        "postgresql+psycopg://reader@127.100.0.1:6543/cohort?sslmode=require")
    assert with_host("http://[::1]/q", "::2", None) == "http://[::2]/q"


@pytest.mark.parametrize("text", ["csv", "CSV", " Excel ", "sparql", "other", None, ""])
def test_parse_type_is_case_insensitive_with_csv_default(text: str | None) -> None:
    """Types are matched case-insensitively; a missing type is csv (CONTRACT §1.6)."""
    expected = DatabaseType((text or "csv").strip().lower())
    assert parse_type(text) is expected


def test_parse_type_names_the_known_types() -> None:
    """An unknown type is refused with the list of types."""
    with pytest.raises(ValueError, match="csv, parquet, excel, sql, sparql, other"):
        parse_type("omop")
