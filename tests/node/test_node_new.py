"""`v6flow node new`, `node list` and `node files` without a server: options, prompts,
validation by the node's model, the private file, and the config folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from v6flow._config import load_settings
from v6flow.cli.exit_codes import ExitCode
from v6flow_node.settings import NodeSettings

CLI = (sys.executable, "-m", "v6flow.cli.main")
KEY = "9f1c2d3e-0000-4000-8000-123456789abc"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose config and data folders are inside ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("V6FLOW_NODE_")}
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1", "COLUMNS": "300"}


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    """A small data file."""
    path = tmp_path / "patients.csv"
    path.write_text("age\n40\n", encoding="utf-8")
    return path


def run(env: dict[str, str], *args: str, answers: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """`v6flow node …` with ``answers`` on standard input (none: closed) and no terminal."""
    return subprocess.run([*CLI, "node", *args], input=answers or "", capture_output=True,
                          text=True, timeout=60, check=False, env=env, start_new_session=True)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace made one space (rich wraps long lines)."""
    return " ".join(text.split())


def test_options_alone_write_a_private_config_the_node_accepts(
        home: dict[str, str], tmp_path: Path, csv_file: Path) -> None:
    """Every option given: no question, a 0600 file in the config folder that loads as given."""
    # Execute
    proc = run(home, "new", "--name", "hospital-a", "--server-url", "http://127.0.0.1:7601/api/",
               "--api-key", KEY, "--task-dir", str(tmp_path / "tasks"),
               "--database", f"label=default,uri={csv_file},type=csv",
               "--allowed-algorithm", "^v6flow/.*", "--allowed-algorithm", "v6flow/mean-r",
               "--no-require-algorithm-pull")
    # Assert
    path = tmp_path / "config" / "v6flow" / "nodes" / "hospital-a.yaml"
    assert proc.returncode == 0, proc.stderr
    assert str(path) in one_line(proc.stdout) and "?" not in proc.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = load_settings(NodeSettings, path, file_over_env=True)
    assert (settings.name, settings.server_url) == ("hospital-a", "http://127.0.0.1:7601/api")
    assert settings.api_key.get_secret_value() == KEY
    assert settings.task_dir == (tmp_path / "tasks").resolve()
    assert [(d.label, d.file, d.type.value) for d in settings.databases] == [
        ("default", csv_file.resolve(), "csv")]
    assert settings.policies.allowed_algorithms == ["^v6flow/.*", "v6flow/mean-r"]
    assert settings.policies.require_algorithm_pull is False


def test_yes_takes_the_defaults_and_warns_about_what_is_missing(home: dict[str, str],
                                                                tmp_path: Path) -> None:
    """--yes asks nothing: task_dir defaults to the data folder; no data and no allowed
    image are warned about."""
    # Execute
    proc = run(home, "new", "--yes", "--name", "b", "--server-url", "http://h:7601/api",
               "--api-key", KEY)
    # Assert
    assert proc.returncode == 0, proc.stderr
    settings = load_settings(NodeSettings, tmp_path / "config/v6flow/nodes/b.yaml",
                             file_over_env=True)
    assert settings.task_dir == (tmp_path / "data" / "v6flow" / "tasks").resolve()
    err = one_line(proc.stderr)
    assert "warning: no databases" in err
    assert "warning: policies.allowed_algorithms is empty" in err


def test_wrong_values_name_each_setting_and_its_option(home: dict[str, str],
                                                       tmp_path: Path) -> None:
    """Every wrong value is listed with the option it came from; exit 2; no file."""
    # Execute
    proc = run(home, "new", "--yes", "--name", "c", "--server-url", "ftp://h", "--api-key", KEY,
               "--database", "label=1x,uri=/nonexistent.csv", "--allowed-algorithm", "[open")
    # Assert
    err = one_line(proc.stderr)
    assert proc.returncode == ExitCode.CONFIGURATION, proc.stderr
    assert "server_url: must start with http:// or https:// (from --server-url)" in err
    assert "databases[0].label: '1x' is not a database label" in err and "(from --database)" in err
    assert "databases[0].uri: /nonexistent.csv is not an existing file (from --database)" in err
    assert "policies.allowed_algorithms" in err
    assert not (tmp_path / "config").exists()


def test_environment_does_not_fill_a_missing_setting(home: dict[str, str]) -> None:
    """The file must be complete by itself: V6FLOW_NODE_API_KEY does not stand in for it."""
    # Execute
    proc = run({**home, "V6FLOW_NODE_API_KEY": KEY}, "new", "--yes", "--name", "d",
               "--server-url", "http://h:7601/api")
    # Assert
    assert proc.returncode == ExitCode.CONFIGURATION, proc.stderr
    assert "api_key: Field required (from --api-key)" in one_line(proc.stderr)


def test_unknown_database_key_suggests_the_right_one(home: dict[str, str],
                                                     csv_file: Path) -> None:
    """A misspelled key in --database is refused with the closest known key."""
    # Execute
    proc = run(home, "new", "--yes", "--name", "e", "--server-url", "http://h/api",
               "--api-key", KEY, "--database", f"lable=default,uri={csv_file}")
    # Assert
    assert proc.returncode == ExitCode.CONFIGURATION
    assert "--database #1: unknown key 'lable' (did you mean 'label'?)" in one_line(proc.stderr)


def test_a_comma_in_a_database_path_is_kept(home: dict[str, str], tmp_path: Path) -> None:
    """A part without ``key=`` continues the previous value, so paths may hold commas."""
    # Prepare
    csv = tmp_path / "a,b.csv"
    csv.write_text("x\n1\n", encoding="utf-8")
    # Execute
    proc = run(home, "new", "--yes", "--name", "f", "--server-url", "http://h/api",
               "--api-key", KEY, "--database", f"uri={csv},label=default")
    # Assert
    assert proc.returncode == 0, proc.stderr
    settings = load_settings(NodeSettings, tmp_path / "config/v6flow/nodes/f.yaml",
                             file_over_env=True)
    assert settings.databases[0].file == csv.resolve()


def test_questions_ask_what_is_missing_and_ask_wrong_answers_again(
        home: dict[str, str], tmp_path: Path, csv_file: Path) -> None:
    """Answers on standard input fill the file; a wrong URL and a missing data file are
    asked again."""
    # Prepare: name, url (wrong, then right), key, task_dir, a database (wrong path, then
    # right), no more databases, allowed images, no pull
    answers = "\n".join([
        "station-g", "ftp://wrong", KEY, str(tmp_path / "tasks"),
        "y", "default", "/nonexistent.csv", "csv", "default", str(csv_file), "csv", "n",
        "^v6flow/.*, v6flow-test/x", "n", "http://127.0.0.1:7601/api"]) + "\n"
    # Execute
    proc = run(home, "new", answers=answers)
    # Assert
    assert proc.returncode == 0, proc.stderr + proc.stdout
    err = one_line(proc.stderr)
    assert "/nonexistent.csv is not an existing file (asked again)" in err
    assert "server_url: must start with http:// or https:// (from your answer)" in err
    settings = load_settings(NodeSettings, tmp_path / "config/v6flow/nodes/station-g.yaml",
                             file_over_env=True)
    assert settings.server_url == "http://127.0.0.1:7601/api"
    assert settings.api_key.get_secret_value() == KEY
    assert [d.file for d in settings.databases] == [csv_file.resolve()]
    assert settings.policies.allowed_algorithms == ["^v6flow/.*", "v6flow-test/x"]
    assert settings.policies.require_algorithm_pull is False
    assert KEY not in proc.stdout + proc.stderr


def test_end_of_input_names_the_option_to_pass(home: dict[str, str]) -> None:
    """A script without the options and without --yes: the open question names its option."""
    # Execute
    proc = run(home, "new")
    # Assert
    assert proc.returncode == ExitCode.CONFIGURATION
    assert "no answer to 'Node name' on standard input: pass --name" in one_line(proc.stderr)


def test_an_existing_file_is_kept_unless_forced(home: dict[str, str], tmp_path: Path) -> None:
    """A second `node new` to the same file is refused; --force replaces it (still 0600)."""
    # Prepare
    out = tmp_path / "elsewhere" / "n.yaml"
    args = ("new", "--yes", "--name", "h", "--server-url", "http://h/api", "--output", str(out))
    assert run(home, *args, "--api-key", "first").returncode == 0
    # Execute
    refused = run(home, *args, "--api-key", "second")
    forced = run(home, *args, "--api-key", "second", "--force")
    # Assert
    assert refused.returncode == ExitCode.CONFIGURATION
    assert "exists (use --force" in one_line(refused.stderr)
    assert forced.returncode == 0, forced.stderr
    assert "second" in out.read_text(encoding="utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.parent.iterdir()) == ["n.yaml"]


def test_list_shows_each_config_and_what_is_wrong_with_one(
        home: dict[str, str], tmp_path: Path, csv_file: Path) -> None:
    """`node list` shows name, server and databases of each file, marks a broken one, and
    finds the folder through V6FLOW_NODE_CONFIG_DIR."""
    # Prepare
    folder = tmp_path / "nodes"
    env = {**home, "V6FLOW_NODE_CONFIG_DIR": str(folder)}
    for name in ("n1", "n2"):
        made = run(env, "new", "--yes", "--name", name, "--server-url", f"http://{name}/api",
                   "--api-key", KEY, "--database", f"label=default,uri={csv_file}")
        assert made.returncode == 0, made.stderr
    (folder / "broken.yaml").write_text("server_url: ftp://x\n", encoding="utf-8")
    # Execute
    proc = run(env, "list", "--json")
    table = run(env, "list")
    # Assert
    assert proc.returncode == 0, proc.stderr
    rows: dict[Any, dict[str, Any]] = {
        Path(r["config"]).name: r for r in json.loads(proc.stdout)["nodes"]}
    assert set(rows) == {"n1.yaml", "n2.yaml", "broken.yaml"}
    assert rows["n1.yaml"]["server_url"] == "http://n1/api"
    assert rows["n1.yaml"]["databases"] == ["default (csv)"]
    assert rows["n1.yaml"]["problem"] is None and rows["n1.yaml"]["running"] is False
    assert rows["broken.yaml"]["problem"].startswith("server_url: must start with http://")
    assert rows["broken.yaml"]["problem"].endswith("(and 2 more)")  # api_key, task_dir
    assert "n2" in table.stdout and "stopped" in table.stdout and "invalid" in table.stdout


def test_files_prints_where_a_node_keeps_its_things(home: dict[str, str], tmp_path: Path,
                                                    csv_file: Path) -> None:
    """`node files` names the node folder, run folders, socket, pid file, log and data."""
    # Prepare
    config = tmp_path / "n.yaml"
    assert run(home, "new", "--yes", "--name", "My Node", "--server-url", "http://h/api",
               "--api-key", KEY, "--task-dir", str(tmp_path / "t"), "--database",
               f"label=default,uri={csv_file}", "--output", str(config)).returncode == 0
    # Execute
    proc = run(home, "files", "--config", str(config), "--json")
    plain = run(home, "files", "--config", str(config))
    # Assert
    assert proc.returncode == 0, proc.stderr
    places = json.loads(proc.stdout)
    folder = (tmp_path / "t").resolve() / "My-Node"
    assert places["config"] == str(config.resolve())
    assert places["node_dir"] == str(folder)
    assert places["run_folders"] == f"{folder}/task-<run id, 9 digits>/"
    assert places["proxy_socket"] == f"{folder}/proxy/proxy.sock"
    assert places["pid_file"] == f"{folder}/node.pid"
    assert places["log"].startswith("standard error")
    assert places["databases"] == {"default": f"{csv_file.resolve()} (csv)"}
    assert f"proxy socket  {folder}/proxy/proxy.sock" in plain.stdout
