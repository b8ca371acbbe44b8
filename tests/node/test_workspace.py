"""Run folders and the container environment (CONTRACT §1.2, §1.3)."""

from __future__ import annotations

import json
from pathlib import Path

from v6flow.wire import decode_env
from v6flow_node.runtime.workspace import build_environment, create_workspace, database_volumes
from v6flow_node.settings import NodeSettings


def _settings(tmp_path: Path) -> NodeSettings:
    csv = tmp_path / "a.csv"
    csv.write_text("x\n1\n")
    pq = tmp_path / "b.parquet"
    pq.write_bytes(b"PAR1")
    return NodeSettings(server_url="http://127.0.0.1:1/api", api_key="k", task_dir=tmp_path,
                        databases=[{"label": "default", "uri": csv, "type": "csv"},
                                   {"label": "extra", "uri": pq, "type": "parquet"}],
                        algorithm_env={"MY_SETTING": "ABCDEFGH", "HOST": "override"})


def test_workspace_files(tmp_path: Path) -> None:
    """Input, empty output and token are written under task-<9 digits>."""
    ws = create_workspace(tmp_path, 42, input_bytes=b'{"method": "x"}', token="a.b.c")
    assert ws.host_dir.name == "task-000000042"
    assert ws.container_dir == "/mnt/data/task-000000042"
    assert (ws.host_dir / "input").read_bytes() == b'{"method": "x"}'
    assert (ws.host_dir / "output").read_bytes() == b""
    assert (ws.host_dir / "token").read_text() == "a.b.c"
    ws.remove()
    assert not ws.host_dir.exists()


def test_environment_is_encoded_and_complete(tmp_path: Path) -> None:
    """Every value is base32-encoded; labels, params and algorithm_env land as in v4."""
    # Prepare
    settings = _settings(tmp_path)
    ws = create_workspace(tmp_path, 7, input_bytes=b"", token="t")
    task_dbs = [{"label": "extra", "parameters": json.dumps(
        {"query": "select 1", "preprocessing": [{"function": "f", "parameters": {}}]})},
                {"label": "default", "sheet_name": "S1"}]
    # Execute
    env = build_environment(workspace=ws, settings=settings, task_databases=task_dbs)
    # Assert
    assert all(v == v.upper() for v in env.values())  # base32 alphabet only
    plain = decode_env(env)
    assert plain["INPUT_FILE"] == "/mnt/data/task-000000007/input"
    assert plain["OUTPUT_FILE"] == "/mnt/data/task-000000007/output"
    assert plain["TOKEN_FILE"] == "/mnt/data/task-000000007/token"
    assert plain["TEMPORARY_FOLDER"] == "/mnt/tmp"
    assert (plain["PORT"], plain["API_PATH"]) == ("8080", "")
    assert plain["HOST"] == "override"  # algorithm_env is merged last
    assert plain["MY_SETTING"] == "ABCDEFGH"
    assert plain["USER_REQUESTED_DATABASE_LABELS"] == "extra,default"
    assert plain["DEFAULT_DATABASE_URI"] == "/mnt/default/a.csv"
    assert plain["EXTRA_DATABASE_URI"] == "/mnt/extra/b.parquet"
    assert plain["EXTRA_DATABASE_TYPE"] == "parquet"
    assert plain["EXTRA_QUERY"] == "select 1"
    assert json.loads(plain["EXTRA_PREPROCESSING"]) == [{"function": "f", "parameters": {}}]
    assert plain["DEFAULT_SHEET_NAME"] == "S1"
    assert plain["DB_LABELS"] == "default,extra"
    assert "PKG_NAME" not in env


def test_database_volumes_are_read_only(tmp_path: Path) -> None:
    """File databases are bind-mounted read-only at /mnt/<label>/<basename>."""
    settings = _settings(tmp_path)
    volumes = database_volumes(settings.databases)
    assert volumes[str(tmp_path.resolve() / "a.csv")] == {"bind": "/mnt/default/a.csv",
                                                         "mode": "ro"}
    assert all(v["mode"] == "ro" for v in volumes.values())


def _server_settings(tmp_path: Path) -> NodeSettings:
    return NodeSettings(server_url="http://127.0.0.1:1/api", api_key="k", task_dir=tmp_path,
                        databases=[
                            {"label": "pg", "type": "sql",
                             "uri": "postgresql://reader:p%3Aw%40d@127.0.0.1:5432/cohort",
                             "env": {"SCHEMA": "cdm", "PORT": 5432}},
                            {"label": "pg_b", "type": "sql", "password": "other-secret",
                             "uri": "postgresql+psycopg://u@db.example/b"},
                            {"label": "ext", "type": "other", "uri": "s3://bucket/x?y=1"}])


def test_server_databases_get_forwarded_uris_without_password(tmp_path: Path) -> None:
    """A sql URI reaches the container without its password; the password of a requested
    database is in <LABEL>_DB_PARAM_PASSWORD and, for PostgreSQL, in the run's pgpass."""
    # Prepare
    settings = _server_settings(tmp_path)
    ws = create_workspace(tmp_path, 8, input_bytes=b"", token="t")
    # Execute
    plain = decode_env(build_environment(workspace=ws, settings=settings,
                                         task_databases=[{"label": "pg"}]))
    # Assert
    assert plain["PG_DATABASE_URI"] == "postgresql://reader@127.100.0.1:5432/cohort"
    assert plain["PG_B_DATABASE_URI"] == "postgresql+psycopg://u@db.example/b"  # name kept
    assert plain["EXT_DATABASE_URI"] == "s3://bucket/x?y=1"
    assert (plain["PG_DB_PARAM_PASSWORD"], plain["PG_DB_PARAM_SCHEMA"]) == ("p:w@d", "cdm")
    assert plain["PG_DB_PARAM_PORT"] == "5432"
    assert "PG_B_DB_PARAM_PASSWORD" not in plain  # not requested: no credentials
    assert plain["PGPASSFILE"] == "/mnt/data/task-000000008/pgpass"
    pgpass = ws.host_dir / "pgpass"
    assert pgpass.read_text() == "127.100.0.1:5432:cohort:reader:p\\:w@d\n"
    assert pgpass.stat().st_mode & 0o077 == 0  # libpq ignores a file others can read
    assert database_volumes(settings.databases) == {}  # nothing to mount


def test_settings_keep_no_password_in_the_uri(tmp_path: Path) -> None:
    """A password written into a uri is moved to `password` and never shown by repr."""
    db = _server_settings(tmp_path).databases[0]
    assert db.uri == "postgresql://reader@127.0.0.1:5432/cohort"
    assert db.password is not None and db.password.get_secret_value() == "p:w@d"
    assert "p:w@d" not in repr(db) and "p%3Aw%40d" not in repr(db)
