"""Decorators that inject a client, data or run metadata in front of an algorithm's arguments.

Compatible with ``vantage6.algorithm.tools.decorators`` 4.15.2 (CONTRACT §1.6): the same names,
the same reserved keyword arguments (``mock_client``, ``mock_data``) and the same
``wrapped_in_*_decorator`` attributes, so v4-style algorithms run unchanged. Like v4, stacked
decorators put the value of the innermost one first. Differences, on purpose:

- ``@data(n)`` passes the databases in the order the task requested them (v4 prepends each one,
  so with n > 1 the *last* label came first);
- errors are raised as ``v6flow.errors`` types (``MissingEnvironment``, ``DataLoadError``)
  instead of ``exit(1)``: ``wrap_algorithm`` turns them into exit code 1;
- ``@metadata`` accepts a reserved ``mock_metadata=`` keyword, so the mock client can run it;
- ``@data`` passes a database of type ``other`` as its URI (v4 exits with "unknown type").

The decorators read ``os.environ`` when the function is called; inside a container
``wrap_algorithm`` has decoded it before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from v6flow.algorithm._env import ContainerIdentity, read_token, require_env
from v6flow.algorithm.loaders import load_data, preprocess
from v6flow.databases import DatabaseType
from v6flow.errors import DataLoadError, MissingEnvironment

if TYPE_CHECKING:
    import pandas as pd

    from v6flow.algorithm.client import AlgorithmClient

log = logging.getLogger("v6flow.algorithm")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class RunMetaData:
    """Metadata of the run, from the container token and the contract env vars."""

    task_id: int | None
    node_id: int | None
    collaboration_id: int | None
    organization_id: int | None
    temporary_directory: Path | None
    output_file: Path | None
    input_file: Path | None
    token_file: Path | None


def client_from_env() -> AlgorithmClient:
    """Build an AlgorithmClient from ``HOST``, ``PORT``, ``API_PATH`` and ``TOKEN_FILE``.

    Raises:
        MissingEnvironment: a variable or the token file is missing.
    """
    from v6flow.algorithm.client import AlgorithmClient

    token = read_token(require_env("TOKEN_FILE"))
    return AlgorithmClient(token, require_env("HOST"), require_env("PORT"),
                           os.environ.get("API_PATH", ""))


def algorithm_client(func: F) -> F:
    """Pass an :class:`AlgorithmClient` as the first argument (reserved kwarg ``mock_client``).

    Examples:
        >>> @algorithm_client
        ... def central(client, column):
        ...     task = client.task.create({"method": "partial"}, [1, 2])
        ...     return client.wait_for_results(task["id"])
    """

    @wraps(func)
    def wrapper(*args: Any, mock_client: Any = None, **kwargs: Any) -> Any:
        if mock_client is not None:
            return func(mock_client, *args, **kwargs)
        client = client_from_env()
        try:
            return func(client, *args, **kwargs)
        finally:
            client.close()

    wrapper.wrapped_in_algorithm_client_decorator = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def requested_labels() -> list[str]:
    """``USER_REQUESTED_DATABASE_LABELS`` split on commas, in request order."""
    raw = require_env("USER_REQUESTED_DATABASE_LABELS")
    return [label.strip() for label in raw.split(",") if label.strip()]


def load_label(label: str) -> pd.DataFrame | str:
    """Load and preprocess the database a node configured under ``label``.

    Reads ``<LABEL>_DATABASE_URI``, ``_DATABASE_TYPE`` (default csv), ``_QUERY``,
    ``_SHEET_NAME``, ``_DB_PARAM_PASSWORD`` and ``_PREPROCESSING``. A database of type
    ``other`` is not loaded: its URI is returned as it is (v4's ``@data`` exits instead).

    Raises:
        MissingEnvironment: the node has no database with this label.
        DataLoadError: the database cannot be read or preprocessed.
    """
    key = label.upper()
    uri = require_env(f"{key}_DATABASE_URI")
    db_type = os.environ.get(f"{key}_DATABASE_TYPE", "csv")
    steps = os.environ.get(f"{key}_PREPROCESSING")
    if db_type.strip().lower() == DatabaseType.OTHER.value:
        if steps:
            raise DataLoadError(f"database {label!r} has type 'other': there is no DataFrame "
                                "to preprocess")
        return uri
    df = load_data(uri, db_type, query=os.environ.get(f"{key}_QUERY"),
                   sheet_name=os.environ.get(f"{key}_SHEET_NAME"),
                   password=os.environ.get(f"{key}_DB_PARAM_PASSWORD"))
    return preprocess(df, steps)


def data(number_of_databases: int = 1) -> Callable[[F], F]:
    """Pass ``number_of_databases`` DataFrames first, in the task's request order.

    A database of type ``other`` is passed as its URI (a ``str``) instead of a DataFrame.
    Reserved kwarg ``mock_data``: a list of DataFrames used instead of the databases.

    Raises:
        DataLoadError: fewer databases requested than needed, or one cannot be read.
    """

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, mock_data: list[Any] | None = None, **kwargs: Any) -> Any:
            if mock_data is not None:
                return func(*mock_data, *args, **kwargs)
            labels = requested_labels()
            if len(labels) < number_of_databases:
                raise DataLoadError(
                    f"{func.__name__} needs {number_of_databases} database(s) but the task "
                    f"requested {len(labels)} ({', '.join(labels) or 'none'})"
                )
            if len(labels) > number_of_databases:
                log.warning("task requested %d databases; %s uses the first %d",
                            len(labels), func.__name__, number_of_databases)
            frames = [load_label(label) for label in labels[:number_of_databases]]
            return func(*frames, *args, **kwargs)

        wrapper.wrapped_in_data_decorator = True  # type: ignore[attr-defined]
        wrapper.number_of_databases = number_of_databases  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def metadata_from_env() -> RunMetaData:
    """Build :class:`RunMetaData` from ``TOKEN_FILE`` (``sub`` claim) and the env.

    Raises:
        MissingEnvironment: a variable or one of the four ids in the token is missing.
    """
    token_file = require_env("TOKEN_FILE")
    ident = ContainerIdentity.from_token(read_token(token_file))
    for name in ("task_id", "node_id", "collaboration_id", "organization_id"):
        if getattr(ident, name) is None:
            raise MissingEnvironment(f"{name} in the container token")
    return RunMetaData(
        task_id=ident.task_id, node_id=ident.node_id, collaboration_id=ident.collaboration_id,
        organization_id=ident.organization_id,
        temporary_directory=Path(require_env("TEMPORARY_FOLDER")),
        output_file=Path(require_env("OUTPUT_FILE")), input_file=Path(require_env("INPUT_FILE")),
        token_file=Path(token_file),
    )


def metadata(func: F) -> F:
    """Pass a :class:`RunMetaData` first (reserved kwarg ``mock_metadata``)."""

    @wraps(func)
    def wrapper(*args: Any, mock_metadata: RunMetaData | None = None, **kwargs: Any) -> Any:
        meta = mock_metadata if mock_metadata is not None else metadata_from_env()
        return func(meta, *args, **kwargs)

    wrapper.wrapped_in_metadata_decorator = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
