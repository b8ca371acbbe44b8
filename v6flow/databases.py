"""The database types of v6flow, and the URL helpers the node and the algorithm side share.

This is the one list of types (CONTRACT §1.2, §1.6): the node validates ``node.yaml`` against
it and ``@data`` loads by it. Stdlib only: it runs in algorithm images too.

========  ====================================  =========================================
type      what the node configures (``uri``)    what ``@data`` passes the algorithm
========  ====================================  =========================================
csv       a file on the node (mounted ro)       DataFrame (``pandas.read_csv``)
parquet   a file on the node (mounted ro)       DataFrame (``pandas.read_parquet``)
excel     a file on the node (mounted ro)       DataFrame (``pandas.read_excel``, openpyxl)
sql       an SQLAlchemy URL, or an SQLite file  DataFrame of the task's query
sparql    an http(s) SPARQL 1.1 endpoint        DataFrame of the task's query
other     anything; passed through untouched    the URI itself (a ``str``)
========  ====================================  =========================================

A server URL (``sql`` or ``sparql``) never carries its password into a container's
``<LABEL>_DATABASE_URI``: :func:`split_password` takes it out, and the node hands it over
separately (docs/databases.md).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from urllib.parse import quote, unquote, urlsplit, urlunsplit


class DatabaseType(StrEnum):
    """How a node database is reached and loaded (``<LABEL>_DATABASE_TYPE``)."""

    CSV = "csv"
    PARQUET = "parquet"
    EXCEL = "excel"
    SQL = "sql"
    SPARQL = "sparql"
    OTHER = "other"


#: Types whose ``uri`` is a file on the node, bind-mounted read-only into containers.
FILE_TYPES = frozenset({DatabaseType.CSV, DatabaseType.PARQUET, DatabaseType.EXCEL})
#: Types ``@data`` loads into a DataFrame (``other`` gives the URI itself).
DATAFRAME_TYPES = FILE_TYPES | {DatabaseType.SQL, DatabaseType.SPARQL}
#: Types whose loader needs the task's query (``<LABEL>_QUERY``).
QUERY_TYPES = frozenset({DatabaseType.SQL, DatabaseType.SPARQL})

#: Port of a server URL without one, by URL scheme (SQLAlchemy dialect, without ``+driver``).
DEFAULT_PORTS = {
    "postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433,
    "oracle": 1521, "cockroachdb": 26257, "http": 80, "https": 443,
}
#: URL schemes (dialects) read with psycopg (libpq): they honour ``PGPASSFILE``.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def parse_type(value: str | None) -> DatabaseType:
    """``<LABEL>_DATABASE_TYPE`` as a :class:`DatabaseType` (case-insensitive; empty: csv).

    Raises:
        ValueError: not one of the types.
    """
    text = (value or DatabaseType.CSV.value).strip().lower()
    try:
        return DatabaseType(text)
    except ValueError:
        known = ", ".join(t.value for t in DatabaseType)
        raise ValueError(f"unknown database type {value!r}; known types: {known}") from None


def dialect(uri: str) -> str:
    """The URL scheme without its driver: ``postgresql`` for ``postgresql+psycopg://…``."""
    return urlsplit(uri).scheme.split("+", 1)[0].lower()


def is_sqlite_url(uri: str) -> bool:
    """True for ``sqlite:///…`` (any driver)."""
    return dialect(uri) == "sqlite"


def sqlite_path(uri: str) -> str:
    """The file of a ``sqlite:///path`` URL (``sqlite:////abs`` → ``/abs``), else ``uri``."""
    if not is_sqlite_url(uri):
        return uri
    return uri.split("://", 1)[1][1:].split("?", 1)[0]


def _split_netloc(netloc: str) -> tuple[str | None, str]:
    userinfo, at, hostport = netloc.rpartition("@")
    return (userinfo if at else None), hostport


def split_password(uri: str) -> tuple[str, str | None]:
    """Take the password out of a URL's user info.

    Returns:
        ``(uri without the password, the password percent-decoded or None)``; the user name
        and everything else stay exactly as written.
    """
    parts = urlsplit(uri)
    userinfo, hostport = _split_netloc(parts.netloc)
    if userinfo is None or ":" not in userinfo:
        return uri, None
    user, _, password = userinfo.partition(":")
    netloc = f"{user}@{hostport}" if user else hostport
    return urlunsplit(parts._replace(netloc=netloc)), unquote(password)


def with_password(uri: str, password: str) -> str:
    """``uri`` with ``password`` (percent-encoded) in its user info, replacing any there."""
    bare, _old = split_password(uri)
    parts = urlsplit(bare)
    userinfo, hostport = _split_netloc(parts.netloc)
    netloc = f"{userinfo or ''}:{quote(password, safe='')}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact(uri: str) -> str:
    """``uri`` with a password, if any, shown as ``***`` (for messages and logs)."""
    bare, password = split_password(uri)
    if password is None:
        return uri
    parts = urlsplit(bare)
    userinfo, hostport = _split_netloc(parts.netloc)
    return urlunsplit(parts._replace(netloc=f"{userinfo or ''}:***@{hostport}"))


def host_and_port(uri: str) -> tuple[str, int | None]:
    """Host (brackets of an IPv6 literal removed, lower case) and port of a server URL.

    Raises:
        ValueError: the port is not a number in 1..65535.
    """
    parts = urlsplit(uri)
    port = parts.port  # raises ValueError when out of range or not a number
    return (parts.hostname or ""), port


def with_host(uri: str, host: str, port: int | None) -> str:
    """``uri`` with its host (and port, when given) replaced; user info kept as written."""
    parts = urlsplit(uri)
    userinfo, _hostport = _split_netloc(parts.netloc)
    shown = f"[{host}]" if ":" in host else host
    hostport = f"{shown}:{port}" if port is not None else shown
    netloc = f"{userinfo}@{hostport}" if userinfo is not None else hostport
    return urlunsplit(parts._replace(netloc=netloc))


def is_ip_literal(host: str) -> bool:
    """True for ``10.0.0.5`` or ``::1`` (a name needs resolving; an address does not)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
