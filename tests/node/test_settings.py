"""node.yaml validation: every error names the field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from v6flow.errors import ConfigurationError
from v6flow_node.settings import load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    return path


def test_valid_config_has_v4_defaults(tmp_path: Path, csv_file: Path) -> None:
    """A minimal config loads, with require_algorithm_pull true and logs shared."""
    # Prepare
    path = _write(tmp_path, f"server_url: http://127.0.0.1:1/api/\napi_key: k\n"
                            f"task_dir: {tmp_path}\ndatabases:\n"
                            f"  - {{label: default, uri: {csv_file}, type: csv}}\n")
    # Execute
    settings = load_settings(path)
    # Assert
    assert settings.server_url == "http://127.0.0.1:1/api"
    assert settings.policies.require_algorithm_pull is True
    assert settings.policies.allowed_algorithms == []  # secure default: nothing runs
    assert settings.share_algorithm_logs is True
    assert settings.databases[0].file == csv_file.resolve()
    assert settings.api_key.get_secret_value() == "k"
    assert "k" not in repr(settings.api_key)


@pytest.mark.parametrize(("body", "field"), [
    ("api_key: k\ntask_dir: /tmp\n", "server_url"),
    ("server_url: http://x/api\ntask_dir: /tmp\n", "api_key"),
    ("server_url: http://x/api\napi_key: k\ntask_dir: /tmp\nbogus: 1\n", "bogus"),
    ("server_url: http://x/api\napi_key: k\ntask_dir: /tmp\n"
     "databases: [{label: 1bad, uri: CSV}]\n", "databases[0].label"),
    ("server_url: http://x/api\napi_key: k\ntask_dir: /tmp\n"
     "databases: [{label: ok, uri: CSV, type: xlsx}]\n", "databases[0].type"),
    ("server_url: http://x/api\napi_key: k\ntask_dir: /tmp\n"
     "databases: [{label: ok, uri: /nonexistent.csv}]\n", "databases[0].uri"),
    ("server_url: http://x/api\napi_key: k\ntask_dir: /tmp\n"
     "policies: {require_algorithm_pull: maybe}\n", "policies.require_algorithm_pull"),
    ("server_url: http://x/api\napi_key: k\ntask_dir: /tmp\n"
     "algorithm_env: {PKG_NAME: evil}\n", "algorithm_env"),
])
def test_wrong_field_is_named(tmp_path: Path, csv_file: Path, body: str, field: str) -> None:
    """Each wrong field gives a ConfigurationError naming that field."""
    # Prepare
    path = _write(tmp_path, body.replace("CSV", str(csv_file)))
    # Execute
    with pytest.raises(ConfigurationError) as info:
        load_settings(path)
    # Assert
    assert info.value.field == field


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    """A missing file and invalid YAML are ConfigurationErrors too."""
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_settings(_write(tmp_path, "a: [\n"))
    with pytest.raises(ConfigurationError, match="mapping"):
        load_settings(_write(tmp_path, "- 1\n"))


def test_cli_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    """`v6flow node start` with a bad field prints one line naming it and exits 2."""
    # Prepare
    path = _write(tmp_path, "server_url: http://x/api\napi_key: k\ntask_dir: /tmp\n"
                            "share_algorithm_logs: perhaps\n")
    # Execute
    proc = subprocess.run([sys.executable, "-m", "v6flow.cli.main", "node", "start",
                           "--config", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    # Assert
    assert proc.returncode == 2, proc.stderr
    assert "share_algorithm_logs" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_an_invalid_allow_list_regex_is_a_config_error(tmp_path: Path, csv_file: Path) -> None:
    """A broken regex is refused at start, naming the field, not skipped silently per run."""
    path = _write(tmp_path, f"server_url: http://127.0.0.1:1/api\napi_key: k\n"
                            f"task_dir: {tmp_path}\ndatabases:\n"
                            f"  - {{label: default, uri: {csv_file}, type: csv}}\n"
                            "policies:\n  allowed_algorithms: ['[unclosed']\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(path)
    assert "allowed_algorithms" in str(info.value)


_BASE = "server_url: http://x/api\napi_key: k\ntask_dir: /tmp\n"


@pytest.mark.parametrize(("limits", "expected"), [
    ("{}", (2 * 1024**3, 256, 1.0)),
    ("{memory: 256m, pids: 64, cpus: 0.5}", (256 * 1024**2, 64, 0.5)),
    ("{memory: 1.5G}", (3 * 1024**3 // 2, 256, 1.0)),
    ("{memory: 512MiB}", (512 * 1024**2, 256, 1.0)),
    ("{memory: 100000000}", (100_000_000, 256, 1.0)),
])
def test_limits_parse(tmp_path: Path, limits: str, expected: tuple[int, int, float]) -> None:
    """limits.memory takes k/m/g sizes (1024-based) or bytes; absent keys get safe defaults."""
    settings = load_settings(_write(tmp_path, f"{_BASE}limits: {limits}\n"))
    assert (settings.limits.memory, settings.limits.pids, settings.limits.cpus) == expected


def test_limits_default_when_absent(tmp_path: Path) -> None:
    """A node.yaml without limits gets the defaults (2 GiB, 256 PIDs, 1 CPU)."""
    settings = load_settings(_write(tmp_path, _BASE))
    assert (settings.limits.memory, settings.limits.pids, settings.limits.cpus) == (
        2 * 1024**3, 256, 1.0)


@pytest.mark.parametrize(("limits", "field", "words"), [
    ("{memory: lots}", "limits.memory", "not a size"),
    ("{memory: 1m}", "limits.memory", "at least 32 MiB"),
    ("{memory: -5g}", "limits.memory", "not a size"),
    ("{pids: 2}", "limits.pids", "16"),
    ("{pids: many}", "limits.pids", "integer"),
    ("{cpus: 0}", "limits.cpus", "between 0.01"),
    ("{cpus: 100000}", "limits.cpus", "CPUs of this host"),
    ("{swap: 1g}", "limits.swap", "not permitted"),
    ("512m", "limits", "valid dictionary"),
])
def test_bad_limits_name_the_field(tmp_path: Path, limits: str, field: str,
                                   words: str) -> None:
    """A wrong limit is refused at start with the field's name and why."""
    with pytest.raises(ConfigurationError) as info:
        load_settings(_write(tmp_path, f"{_BASE}limits: {limits}\n"))
    assert info.value.field == field
    assert words in str(info.value)


def test_database_unreadable_by_containers_is_refused(tmp_path: Path, csv_file: Path) -> None:
    """A database file the container user cannot read is a config error, not a crash later."""
    # Prepare: owned by someone else than the container user, readable by no one else
    csv_file.chmod(0o600)
    owner_is_container_user = os.geteuid() != 0
    if owner_is_container_user:  # a non-root node's containers run as itself
        csv_file.chmod(0o000)
    path = _write(tmp_path, f"{_BASE}databases:\n  - {{label: default, uri: {csv_file}}}\n")
    # Execute
    with pytest.raises(ConfigurationError) as info:
        load_settings(path)
    # Assert
    assert info.value.field == "databases[0].uri"
    assert "cannot read it" in str(info.value)
    csv_file.chmod(0o644)
    assert load_settings(path).databases[0].file == csv_file.resolve()


@pytest.mark.parametrize(("entry", "field", "words"), [
    ("{label: a, type: sql, uri: 'postgresql://u:x@h/d', password: y}", "databases[0].password",
     "holds a password too"),
    ("{label: a, type: sql, uri: 'postgresql:///d'}", "databases[0].uri", "exactly one host"),
    ("{label: a, type: sql, uri: 'foo://h/d'}", "databases[0].uri", "no default port"),
    ("{label: a, type: sql, uri: 'sqlite:///:memory:'}", "databases[0].uri", "name a file"),
    ("{label: a, type: other, uri: ''}", "databases[0].uri", "must not be empty"),
    ("{label: a, uri: CSV, env: {1x: y}}", "databases[0].env", "not an identifier"),
    ("{label: a, uri: CSV, colour: red}", "databases[0].colour", "not permitted"),
])
def test_bad_database_entries_name_the_field(tmp_path: Path, csv_file: Path, entry: str,
                                             field: str, words: str) -> None:
    """Each wrong database entry names its field and says why."""
    path = _write(tmp_path, f"{_BASE}databases:\n  - {entry.replace('CSV', str(csv_file))}\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(path)
    assert info.value.field == field
    assert words in str(info.value)


def test_every_type_is_accepted(tmp_path: Path, csv_file: Path) -> None:
    """csv, parquet, excel and SQLite files, sql and sparql servers and `other` all load."""
    body = "".join(f"  - {{label: l{i}, type: {kind}, uri: '{uri}'}}\n" for i, (kind, uri) in
                   enumerate([("csv", csv_file), ("parquet", csv_file), ("excel", csv_file),
                              ("sql", csv_file), ("sql", f"sqlite:///{csv_file}"),
                              ("sql", "mssql+pyodbc://u@h:1433/d"),
                              ("sparql", "https://h/sparql"), ("other", "anything at all")]))
    settings = load_settings(_write(tmp_path, f"{_BASE}databases:\n{body}"))
    assert [(d.type.value, d.file is not None, d.server) for d in settings.databases] == [
        ("csv", True, None), ("parquet", True, None), ("excel", True, None), ("sql", True, None),
        ("sql", True, None), ("sql", False, ("h", 1433)), ("sparql", False, ("h", 443)),
        ("other", False, None)]
