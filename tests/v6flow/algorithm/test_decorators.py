"""The decorators in-process: data loading, order, preprocessing, reserved kwargs, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.v6flow.algorithm.conftest import TokenFactory
from v6flow.algorithm import RunMetaData, algorithm_client, data, metadata
from v6flow.algorithm.client import AlgorithmClient
from v6flow.algorithm.loaders import load_data, preprocess
from v6flow.errors import DataLoadError, MissingEnvironment
from v6flow.synthetic import write_patient_csv


@data(2)
def _pair(first: pd.DataFrame, second: pd.DataFrame, tag: str) -> tuple[int, int, str]:
    return len(first), len(second), tag


@pytest.fixture
def two_databases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Env for two requested databases: 'b_db' (9 rows) first, then 'a_db' (4 rows)."""
    a = write_patient_csv(tmp_path / "a.csv", 4, seed=1)
    b = write_patient_csv(tmp_path / "b.csv", 9, seed=2)
    monkeypatch.setenv("USER_REQUESTED_DATABASE_LABELS", "b_db,a_db")
    monkeypatch.setenv("A_DB_DATABASE_URI", str(a))
    monkeypatch.setenv("B_DB_DATABASE_URI", str(b))
    monkeypatch.setenv("B_DB_DATABASE_TYPE", "CSV")
    return b, a


def test_data_passes_frames_in_request_order(two_databases: tuple[Path, Path]) -> None:
    """The first requested label is the first argument, then the caller's arguments."""
    first, second = two_databases
    assert _pair("t") == (len(pd.read_csv(first)), len(pd.read_csv(second)), "t")


def test_data_sets_v4_marker_attributes() -> None:
    """@data marks the wrapper like v4 (the mock client relies on it) and keeps the name."""
    assert _pair.wrapped_in_data_decorator is True  # type: ignore[attr-defined]
    assert _pair.__name__ == "_pair"


def test_mock_data_replaces_loading() -> None:
    """mock_data=[...] is used instead of reading any database (no env needed)."""
    frames = [pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [1, 2]})]
    assert _pair("m", mock_data=frames) == (1, 2, "m")


def test_more_labels_than_needed_uses_the_first(two_databases: tuple[Path, Path]) -> None:
    """@data(1) with two requested labels loads only the first one."""
    first, _ = two_databases

    @data(1)
    def count(df: pd.DataFrame) -> int:
        return len(df)

    assert count() == len(pd.read_csv(first))


def test_no_labels_env_is_missing_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without USER_REQUESTED_DATABASE_LABELS the error names the variable."""
    monkeypatch.delenv("USER_REQUESTED_DATABASE_LABELS", raising=False)
    with pytest.raises(MissingEnvironment, match="USER_REQUESTED_DATABASE_LABELS"):
        _pair("x")


def test_preprocessing_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """<LABEL>_PREPROCESSING filter_range is applied like v4's preprocessing step."""
    csv = write_patient_csv(tmp_path / "p.csv", 60, seed=4)
    steps = [{"function": "filter_range",
              "parameters": {"column": "age", "min_": 50, "include_min": True}}]
    monkeypatch.setenv("USER_REQUESTED_DATABASE_LABELS", "default")
    monkeypatch.setenv("DEFAULT_DATABASE_URI", str(csv))
    monkeypatch.setenv("DEFAULT_PREPROCESSING", json.dumps(steps))

    @data(1)
    def count(df: pd.DataFrame) -> int:
        return len(df)

    frame = pd.read_csv(csv)
    assert count() == int((frame["age"] >= 50).sum())


@pytest.mark.parametrize("steps, match", [
    ([{"function": "nope"}], "unknown preprocessing function"),
    ([{"function": "filter_range", "parameters": {}}], "needs parameters"),
    ("{not json", "not valid JSON"),
])
def test_bad_preprocessing_is_data_load_error(steps: object, match: str) -> None:
    """Malformed preprocessing raises DataLoadError with the reason."""
    with pytest.raises(DataLoadError, match=match):
        preprocess(pd.DataFrame({"x": [1]}), steps)  # type: ignore[arg-type]


def test_sqlite_loader(tmp_path: Path) -> None:
    """type sql on an absolute SQLite path runs the query through the stdlib driver."""
    import sqlite3

    db = tmp_path / "d.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (x integer)")
        conn.executemany("insert into t values (?)", [(i,) for i in range(7)])
    frame = load_data(str(db), "sql", query="select x from t where x > 2")
    assert sorted(frame["x"]) == [x for x in range(7) if x > 2]


@pytest.mark.parametrize("db_type, kwargs, match", [
    ("sql", {}, "gave no query"),
    ("sparql", {}, "gave no query"),
    ("xlsx", {}, "unknown database type"),
    ("other", {}, "cannot be loaded into a DataFrame"),
    ("csv", {}, "cannot read csv"),
])
def test_loader_errors(tmp_path: Path, db_type: str, kwargs: dict[str, str], match: str) -> None:
    """Unknown types, a missing query and unreadable files raise DataLoadError."""
    with pytest.raises(DataLoadError, match=match):
        load_data(str(tmp_path / "missing.file"), db_type, **kwargs)


@pytest.mark.parametrize(("uri", "password"), [
    ("postgresql://u:hunter2%21@127.0.0.1:1/x", None),
    ("postgresql+psycopg://u@127.0.0.1:1/x", "hunter2!"),
    ("http://u:hunter2%21@127.0.0.1:1/sparql", None),
])
def test_load_errors_never_show_the_password(uri: str, password: str | None) -> None:
    """A server that cannot be reached gives a DataLoadError without the password."""
    kind = "sparql" if uri.startswith("http") else "sql"
    with pytest.raises(DataLoadError) as info:
        load_data(uri, kind, query="select 1", password=password)
    assert "127.0.0.1" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_data_passes_the_uri_of_an_other_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """@data gives a database of type other as its URI, untouched."""
    monkeypatch.setenv("USER_REQUESTED_DATABASE_LABELS", "ext")
    monkeypatch.setenv("EXT_DATABASE_URI", "s3://bucket/x?y=1")
    monkeypatch.setenv("EXT_DATABASE_TYPE", "Other")

    @data(1)
    def given(value: object) -> object:
        return value

    assert given() == "s3://bucket/x?y=1"


def test_metadata_reads_token_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      token_factory: TokenFactory) -> None:
    """@metadata gives the four ids of the token and the contract paths."""
    token = tmp_path / "token"
    token.write_text(token_factory(task_id=7, node_id=8, organization_id=9,
                                   collaboration_id=10))
    for name, value in {"TOKEN_FILE": token, "TEMPORARY_FOLDER": tmp_path,
                        "OUTPUT_FILE": tmp_path / "o", "INPUT_FILE": tmp_path / "i"}.items():
        monkeypatch.setenv(name, str(value))

    @metadata
    def meta_of(meta: RunMetaData) -> RunMetaData:
        return meta

    assert meta_of() == RunMetaData(7, 8, 10, 9, tmp_path, tmp_path / "o", tmp_path / "i",
                                    token)


def test_metadata_requires_the_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   token_factory: TokenFactory) -> None:
    """A token without task_id is a MissingEnvironment error naming it."""
    token = tmp_path / "token"
    token.write_text(token_factory(task_id=None))
    monkeypatch.setenv("TOKEN_FILE", str(token))

    @metadata
    def meta_of(meta: RunMetaData) -> RunMetaData:
        return meta

    with pytest.raises(MissingEnvironment, match="task_id"):
        meta_of()


def test_algorithm_client_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   token_factory: TokenFactory) -> None:
    """@algorithm_client builds the client at f'{HOST}:{PORT}{API_PATH}' with the token ids."""
    token = tmp_path / "token"
    token.write_text(token_factory(organization_id=4) + "\n")
    monkeypatch.setenv("TOKEN_FILE", str(token))
    monkeypatch.setenv("HOST", "http://proxyserver")
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("API_PATH", "/api")

    @algorithm_client
    def describe(client: AlgorithmClient, x: int) -> tuple[str, int | None, int]:
        return client.base_url, client.organization_id, x

    assert describe(5) == ("http://proxyserver:8080/api", 4, 5)
    assert describe.wrapped_in_algorithm_client_decorator is True  # type: ignore[attr-defined]


def test_algorithm_client_mock_kwarg() -> None:
    """mock_client=... is passed through as the client, without reading the env."""
    sentinel = object()

    @algorithm_client
    def identity(client: object) -> object:
        return client

    assert identity(mock_client=sentinel) is sentinel
