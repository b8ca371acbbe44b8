"""Data loaders for ``@data``: a database URI and type in, a pandas DataFrame out.

Supported types (CONTRACT §1.6): ``csv``, ``parquet``, ``excel`` (needs openpyxl in the image)
and ``sql`` (SQLite files via the stdlib; other URLs need SQLAlchemy in the image). ``sparql``
and OMOP are not supported. Preprocessing steps (``<LABEL>_PREPROCESSING``) are the reference
ones: ``filter_range`` and ``dummy_preprocess``.

pandas is imported lazily, so ``import v6flow.algorithm`` stays cheap.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from v6flow.errors import DataLoadError

if TYPE_CHECKING:
    import pandas as pd

DATABASE_TYPES = ("csv", "parquet", "excel", "sql")


def load_data(uri: str, db_type: str | None = "csv", *, query: str | None = None,
              sheet_name: str | None = None) -> pd.DataFrame:
    """Load one database into a DataFrame.

    Args:
        uri: File path, or a database URL for ``sql``.
        db_type: One of :data:`DATABASE_TYPES` (case-insensitive; default ``csv``).
        query: SQL query (required for ``sql``).
        sheet_name: Excel sheet (default: the first sheet).

    Returns:
        The data.

    Raises:
        DataLoadError: unknown type, missing query, or the source cannot be read.
    """
    import pandas as pd

    kind = (db_type or "csv").lower()
    try:
        if kind == "csv":
            return pd.read_csv(uri)
        if kind == "parquet":
            return pd.read_parquet(uri)
        if kind == "excel":
            return pd.read_excel(uri, sheet_name=sheet_name if sheet_name else 0)
        if kind == "sql":
            return _read_sql(uri, query)
    except DataLoadError:
        raise
    except (OSError, ValueError, ImportError, sqlite3.Error) as exc:
        raise DataLoadError(f"cannot read {kind} database {uri!r}: {exc}") from exc
    raise DataLoadError(
        f"unknown database type {db_type!r} for {uri!r}; supported: {', '.join(DATABASE_TYPES)}"
    )


def _read_sql(uri: str, query: str | None) -> pd.DataFrame:
    import pandas as pd

    if not query:
        raise DataLoadError(f"database {uri!r} has type 'sql' but the task gave no query")
    path = uri.removeprefix("sqlite:///")
    if uri.startswith("sqlite:///") or (Path(uri).is_absolute() and Path(uri).is_file()):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return pd.read_sql_query(query, conn)
    try:
        from sqlalchemy import create_engine
    except ImportError as exc:
        raise DataLoadError(
            f"reading {uri!r} needs SQLAlchemy and a driver in the algorithm image"
        ) from exc
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            return pd.read_sql_query(query, conn)
    finally:
        engine.dispose()


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
