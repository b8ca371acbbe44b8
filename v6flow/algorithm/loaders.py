"""Data loaders for ``@data``: a database URI and type in, a pandas DataFrame out.

The types are :class:`v6flow.databases.DatabaseType` (CONTRACT §1.6):

- ``csv``, ``parquet``: pandas; ``excel``: ``pandas.read_excel`` with openpyxl (first sheet
  unless ``sheet_name``);
- ``sql``: the task's query. An SQLite file (a path or ``sqlite:///…``) is read with the stdlib,
  read-only; a PostgreSQL URL (``postgresql[+driver]://``) with psycopg, in a read-only
  session; any other URL through SQLAlchemy and the driver it names (which the image must
  have). The password comes from ``password`` (``<LABEL>_DB_PARAM_PASSWORD``) or, for
  PostgreSQL, from ``PGPASSFILE``;
- ``sparql``: the task's query, sent as an HTTP POST (SPARQL 1.1 protocol) asking for SPARQL
  JSON results; typed literals become int, float or bool, everything else text, unbound
  values None. The user in the URL and ``password`` are sent as HTTP basic auth;
- ``other`` is not loaded: ``@data`` passes the URI itself.

Messages never show a password. Preprocessing steps (``<LABEL>_PREPROCESSING``) are the
reference ones: ``filter_range`` and ``dummy_preprocess``.

pandas, psycopg and SQLAlchemy are imported lazily, so ``import v6flow.algorithm`` stays cheap.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from v6flow.databases import (
    DATAFRAME_TYPES,
    POSTGRES_SCHEMES,
    QUERY_TYPES,
    DatabaseType,
    dialect,
    is_sqlite_url,
    parse_type,
    redact,
    split_password,
    sqlite_path,
)
from v6flow.errors import DataLoadError

if TYPE_CHECKING:
    import pandas as pd

#: Seconds to wait for a database server to accept a connection.
CONNECT_TIMEOUT = 30
#: Seconds a SPARQL endpoint may take to answer a query.
SPARQL_TIMEOUT = 600.0


def load_data(uri: str, db_type: str | None = "csv", *, query: str | None = None,
              sheet_name: str | None = None, password: str | None = None) -> pd.DataFrame:
    """Load one database into a DataFrame.

    Args:
        uri: File path, database URL (``sql``) or endpoint URL (``sparql``).
        db_type: A :class:`~v6flow.databases.DatabaseType` value (case-insensitive; default
            ``csv``); ``other`` cannot be loaded.
        query: SQL or SPARQL query (required for ``sql`` and ``sparql``).
        sheet_name: Excel sheet (default: the first sheet).
        password: Password of a ``sql``/``sparql`` server, when not in ``uri``.

    Returns:
        The data.

    Raises:
        DataLoadError: unknown type, missing query, or the source cannot be read.
    """
    import pandas as pd

    try:
        kind = parse_type(db_type)
    except ValueError as exc:
        raise DataLoadError(f"{exc} (database {redact(uri)!r})") from None
    if kind not in DATAFRAME_TYPES:
        loadable = ", ".join(t.value for t in DatabaseType if t in DATAFRAME_TYPES)
        raise DataLoadError(f"a database of type {kind.value!r} cannot be loaded into a "
                            f"DataFrame (types: {loadable}); use its URI")
    if kind in QUERY_TYPES and not query:
        raise DataLoadError(f"database {redact(uri)!r} has type {kind.value!r} but the task "
                            "gave no query")
    try:
        if kind is DatabaseType.CSV:
            return pd.read_csv(uri)
        if kind is DatabaseType.PARQUET:
            return pd.read_parquet(uri)
        if kind is DatabaseType.EXCEL:
            return pd.read_excel(uri, sheet_name=sheet_name if sheet_name else 0)
        if kind is DatabaseType.SQL:
            return _read_sql(uri, str(query), password)
        return _read_sparql(uri, str(query), password)
    except DataLoadError:
        raise
    except Exception as exc:  # drivers raise their own types; all mean "cannot read"
        reason = _without(str(exc), password)
        raise DataLoadError(f"cannot read {kind.value} database {redact(uri)!r}: "
                            f"{type(exc).__name__}: {reason}") from exc


def _without(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked (a driver may echo what it was given)."""
    return text.replace(secret, "***") if secret else text


def _read_sql(uri: str, query: str, password: str | None) -> pd.DataFrame:
    import pandas as pd

    if is_sqlite_url(uri) or "://" not in uri:
        path = Path(sqlite_path(uri)).resolve()
        if not path.is_file():
            raise DataLoadError(f"SQLite database {path} does not exist")
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
            return pd.read_sql_query(query, conn)
    bare, in_uri = split_password(uri)
    password = password or in_uri
    if dialect(uri) in POSTGRES_SCHEMES:
        return _read_postgres(bare, query, password)
    try:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
    except ImportError as exc:
        raise DataLoadError(f"reading a {dialect(uri)} database needs SQLAlchemy and its "
                            "driver in the algorithm image") from exc
    url = make_url(bare)
    if password:
        url = url.set(password=password)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql_query(query, conn)
    finally:
        engine.dispose()


def _read_postgres(uri: str, query: str, password: str | None) -> pd.DataFrame:
    """A PostgreSQL query with psycopg (libpq: ``PGPASSFILE`` and ``sslmode`` work)."""
    import pandas as pd

    try:
        import psycopg
    except ImportError as exc:
        raise DataLoadError("reading a PostgreSQL database needs psycopg in the algorithm "
                            "image (pip install 'psycopg[binary]')") from exc
    parts = urlsplit(uri)
    conninfo = urlunsplit(parts._replace(scheme="postgresql"))  # libpq knows no "+driver"
    options: dict[str, Any] = {}
    if password:
        options["password"] = password
    if "connect_timeout" not in parts.query:
        options["connect_timeout"] = CONNECT_TIMEOUT
    with psycopg.connect(conninfo, **options) as conn:
        conn.read_only = True
        with warnings.catch_warnings():
            # pandas warns that it only tests SQLAlchemy and sqlite3 connections; it runs
            # the query on the DBAPI cursor, as v4's loader does with its raw connection
            warnings.simplefilter("ignore", UserWarning)
            dbapi: Any = conn  # pandas' stubs list SQLAlchemy and sqlite3 connections only
            frame: pd.DataFrame = pd.read_sql_query(query, dbapi)
            return frame


#: XML Schema datatypes of SPARQL literals that become Python numbers or booleans.
_XSD = "http://www.w3.org/2001/XMLSchema#"
_INTEGERS = frozenset(f"{_XSD}{name}" for name in (
    "integer", "int", "long", "short", "byte", "nonNegativeInteger", "nonPositiveInteger",
    "positiveInteger", "negativeInteger", "unsignedLong", "unsignedInt", "unsignedShort",
    "unsignedByte"))
_FLOATS = frozenset(f"{_XSD}{name}" for name in ("decimal", "double", "float"))


def _sparql_value(term: dict[str, Any] | None) -> Any:
    """A SPARQL JSON result term as a Python value (None when unbound)."""
    if term is None:
        return None
    value = term.get("value")
    datatype = term.get("datatype")
    try:
        if datatype in _INTEGERS:
            return int(value)  # type: ignore[arg-type]
        if datatype in _FLOATS:
            return float(value)  # type: ignore[arg-type]
        if datatype == f"{_XSD}boolean":
            return value in ("true", "1")
    except (TypeError, ValueError):
        return value
    return value


def _read_sparql(uri: str, query: str, password: str | None) -> pd.DataFrame:
    """POST the query to the endpoint and turn SPARQL JSON results into a DataFrame."""
    import httpx
    import pandas as pd

    bare, in_uri = split_password(uri)
    password = password or in_uri
    parts = urlsplit(bare)
    user = parts.username
    endpoint = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    auth = httpx.BasicAuth(user or "", password) if password else None
    response = httpx.post(
        endpoint, data={"query": query}, auth=auth,
        headers={"Accept": "application/sparql-results+json"},
        timeout=httpx.Timeout(SPARQL_TIMEOUT, connect=CONNECT_TIMEOUT),
    )
    if response.status_code >= 400:
        raise DataLoadError(f"sparql endpoint {redact(uri)!r} answered "
                            f"{response.status_code}: {response.text.strip()[:500]}")
    try:
        body = response.json()
        names = list(body["head"].get("vars") or [])
        if "results" not in body:
            raise DataLoadError("the sparql query gave no table (an ASK query?); use SELECT")
        rows = [[_sparql_value(binding.get(name)) for name in names]
                for binding in body["results"]["bindings"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataLoadError(f"sparql endpoint {redact(uri)!r} did not answer with SPARQL "
                            f"JSON results: {exc}") from exc
    return pd.DataFrame.from_records(rows, columns=names, coerce_float=True)


def filter_range(df: pd.DataFrame, column: str, min_: float | None = None,
                 max_: float | None = None, include_min: bool = False,
                 include_max: bool = False) -> pd.DataFrame:
    """Keep rows whose ``column`` lies within (min_, max_) (reference preprocessing step)."""
    if min_ is not None:
        df = df[df[column] >= min_] if include_min else df[df[column] > min_]
    if max_ is not None:
        df = df[df[column] <= max_] if include_max else df[df[column] < max_]
    return df


def dummy_preprocess(df: pd.DataFrame) -> pd.DataFrame:
    """Return the data unchanged (reference preprocessing step)."""
    return df


PREPROCESSING: dict[str, Callable[..., Any]] = {
    "filter_range": filter_range,
    "dummy_preprocess": dummy_preprocess,
}


def preprocess(df: pd.DataFrame, steps: list[dict[str, Any]] | str | None) -> pd.DataFrame:
    """Apply ``[{"function": name, "parameters": {...}}, ...]`` (a JSON string is accepted).

    Raises:
        DataLoadError: malformed steps, unknown function or missing parameters.
    """
    if not steps:
        return df
    if isinstance(steps, str):
        try:
            steps = json.loads(steps)
        except ValueError as exc:
            raise DataLoadError(f"preprocessing is not valid JSON: {exc}") from exc
    if not isinstance(steps, list):
        raise DataLoadError("preprocessing must be a list of {function, parameters}")
    for step in steps:
        name = step.get("function") if isinstance(step, dict) else None
        func = PREPROCESSING.get(str(name))
        if func is None:
            raise DataLoadError(
                f"unknown preprocessing function {name!r}; known: {', '.join(PREPROCESSING)}"
            )
        params = dict(step.get("parameters") or {})
        required = [p.name for p in list(inspect.signature(func).parameters.values())[1:]
                    if p.default is p.empty and p.name not in params]
        if required:
            raise DataLoadError(f"preprocessing {name!r} needs parameters {required}")
        df = func(df, **params)
    return df
