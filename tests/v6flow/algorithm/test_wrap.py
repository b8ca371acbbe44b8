"""wrap_algorithm() in a real subprocess with a node-encoded environment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.v6flow.algorithm.conftest import RunFolder
from v6flow.synthetic import write_patient_csv


def _stats(series: pd.Series) -> dict[str, float]:
    values = series.dropna().astype(float)
    return {"count": int(values.count()), "sum": float(values.sum()),
            "sum_sq": float((values**2).sum())}


def test_method_call_round_trips_json(run_folder: RunFolder) -> None:
    """echo(value) returns the nested JSON value unchanged, exit code 0."""
    # Prepare
    value = {"a": [1, 2.5, None, "ü"], "b": {"c": True}}
    run_folder.write_input("echo", value)
    # Execute
    proc = run_folder.run()
    # Assert
    assert proc.returncode == 0, proc.stderr
    assert run_folder.result() == value


def test_data_csv_matches_pandas(run_folder: RunFolder, tmp_path: Path) -> None:
    """@data(1) on a csv database gives the statistics pandas computes on the file."""
    csv = write_patient_csv(tmp_path / "org.csv", 73, seed=3)
    run_folder.add_database("default", csv, "csv")
    run_folder.write_input("column_stats", column="age")
    proc = run_folder.run()
    assert proc.returncode == 0, proc.stderr
    assert run_folder.result() == pytest.approx(_stats(pd.read_csv(csv)["age"]))


def test_data_parquet_matches_pandas(run_folder: RunFolder, tmp_path: Path) -> None:
    """@data(1) on a parquet database reads it with the parquet loader."""
    frame = pd.read_csv(write_patient_csv(tmp_path / "org.csv", 41, seed=9))
    parquet = tmp_path / "org.parquet"
    frame.to_parquet(parquet)
    run_folder.add_database("default", parquet, "parquet")
    run_folder.write_input("column_stats", column="bmi")
    proc = run_folder.run()
    assert proc.returncode == 0, proc.stderr
    assert run_folder.result() == pytest.approx(_stats(frame["bmi"]))


def test_default_type_is_csv(run_folder: RunFolder, tmp_path: Path) -> None:
    """Without <LABEL>_DATABASE_TYPE the database is read as csv (v4 default)."""
    csv = write_patient_csv(tmp_path / "org.csv", 17, seed=1)
    run_folder.add_database("default", csv, db_type=None)
    run_folder.write_input("row_count")
    proc = run_folder.run()
    assert proc.returncode == 0, proc.stderr
    assert run_folder.result() == len(pd.read_csv(csv))


def test_data_keeps_request_order(run_folder: RunFolder, tmp_path: Path) -> None:
    """@data(2) passes the databases in the order the task requested them (v4 reversed it)."""
    first = write_patient_csv(tmp_path / "first.csv", 7, seed=1)
    second = write_patient_csv(tmp_path / "second.csv", 19, seed=2)
    run_folder.add_database("second_db", second)
    run_folder.add_database("first_db", first)
    run_folder.write_input("two_row_counts")
    proc = run_folder.run()
    assert proc.returncode == 0, proc.stderr
    assert run_folder.result() == [len(pd.read_csv(second)), len(pd.read_csv(first))]


def test_too_few_databases_fails_clearly(run_folder: RunFolder, tmp_path: Path) -> None:
    """@data(2) with one requested database: exit 1 and a DataLoadError saying so."""
    run_folder.add_database("default", write_patient_csv(tmp_path / "a.csv", 5, seed=1))
    run_folder.write_input("two_row_counts")
    proc = run_folder.run()
    assert proc.returncode == 1
    assert "DataLoadError" in proc.stderr
    assert "needs 2 database(s)" in proc.stderr


def test_non_json_return_leaves_output_untouched(run_folder: RunFolder) -> None:
    """A set return value: exit 1, a clear message, and OUTPUT_FILE keeps its bytes."""
    run_folder.output.write_bytes(b"previous bytes")
    run_folder.write_input("non_json")
    proc = run_folder.run()
    assert proc.returncode == 1
    assert "OutputError" in proc.stderr
    assert "returned a set, which is not JSON-serialisable" in proc.stderr
    assert run_folder.output.read_bytes() == b"previous bytes"


def test_raising_method_exits_1_with_traceback(run_folder: RunFolder) -> None:
    """boom('kaboom'): exit 1, the original ValueError traceback on stderr."""
    run_folder.write_input("boom", "kaboom")
    proc = run_folder.run()
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ValueError: kaboom" in proc.stderr
    assert 'in boom' in proc.stderr
    assert run_folder.output.read_bytes() == b""


def test_unknown_method(run_folder: RunFolder) -> None:
    """A method the package lacks: exit 1 with MethodNotFound naming it."""
    run_folder.write_input("no_such_method")
    proc = run_folder.run()
    assert proc.returncode == 1
    assert "MethodNotFound" in proc.stderr
    assert "no_such_method" in proc.stderr


def test_missing_pkg_name(run_folder: RunFolder) -> None:
    """No PKG_NAME: exit 1 telling to set it in the Dockerfile."""
    run_folder.write_input("echo", 1)
    proc = run_folder.run(pkg=None)
    assert proc.returncode == 1
    assert "PKG_NAME" in proc.stderr
    assert "Dockerfile" in proc.stderr


def test_unimportable_package(run_folder: RunFolder) -> None:
    """A PKG_NAME that cannot be imported: exit 1 naming the package."""
    run_folder.write_input("echo", 1)
    proc = run_folder.run(pkg="no_such_algorithm_package")
    assert proc.returncode == 1
    assert "cannot import algorithm package 'no_such_algorithm_package'" in proc.stderr


def test_input_must_be_json(run_folder: RunFolder) -> None:
    """A non-JSON input file: exit 1 with DeserializationError."""
    run_folder.input.write_bytes(b"\x00not json")
    proc = run_folder.run()
    assert proc.returncode == 1
    assert "DeserializationError" in proc.stderr


def test_plain_env_values_also_work(run_folder: RunFolder) -> None:
    """Unencoded values (lower-case paths) pass through the decoder unchanged."""
    run_folder.write_input("echo", "plain")
    proc = run_folder.run(encode=False)
    assert proc.returncode == 0, proc.stderr
    assert run_folder.result() == "plain"


def test_every_env_value_is_decoded(run_folder: RunFolder) -> None:
    """wrap_algorithm decodes all env vars in place; env_report sees the contract names."""
    run_folder.write_input("env_report")
    proc = run_folder.run()
    assert proc.returncode == 0, proc.stderr
    report = run_folder.result()
    assert {"INPUT_FILE", "OUTPUT_FILE", "TOKEN_FILE", "TEMPORARY_FOLDER", "HOST",
            "PKG_NAME"} <= set(report["set"])


def test_metadata_from_token(run_folder: RunFolder) -> None:
    """@metadata reads the ids from the token's sub claim and the folders from the env."""
    run_folder.write_input("whoami")
    proc = run_folder.run()
    assert proc.returncode == 0, proc.stderr
    assert run_folder.result() == {
        "task_id": 42, "node_id": 11, "organization_id": 3, "collaboration_id": 5,
        "temporary_directory": run_folder.env["TEMPORARY_FOLDER"],
    }


def test_missing_database_env(run_folder: RunFolder) -> None:
    """A requested label the node did not configure: exit 1, MissingEnvironment names it."""
    run_folder.env["USER_REQUESTED_DATABASE_LABELS"] = "ghost"
    run_folder.write_input("row_count")
    proc = run_folder.run()
    assert proc.returncode == 1
    assert "GHOST_DATABASE_URI" in proc.stderr
