"""The ``v6flow`` command: --version, the exit-code registry, logging, the node's config."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import v6flow
from v6flow._config import SettingsError, load_settings
from v6flow.cli.exit_codes import HELP, ExitCode
from v6flow.compat import VANTAGE6_VERSION
from v6flow.logging import QUIET_LIBRARIES, REDACTED, configure_logging
from v6flow_node.exit_codes import ExitCode as NodeExitCode
from v6flow_node.settings import NodeSettings

CLI = (sys.executable, "-m", "v6flow.cli.main")


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version_prints_v6flow_and_vantage6_api_versions(args: list[str]) -> None:
    """`v6flow --version` and `v6flow version` print both versions and exit 0."""
    # Execute
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60,
                            check=False)
    # Assert
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"v6flow {v6flow.__version__} (compatible with the vantage6 {VANTAGE6_VERSION} API)")


def test_every_exit_code_has_help() -> None:
    """Each code of the registry has a non-empty help text."""
    assert set(HELP) == set(ExitCode)
    assert all(text.strip() for text in HELP.values())


def test_node_exit_codes_agree_with_the_cli_registry() -> None:
    """The node daemon's codes mean the same number in the CLI registry."""
    for code in NodeExitCode:
        assert ExitCode[code.name] == code.value


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Give back the process's logging setup after a test that configures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.usefixtures("fresh_logging")
def test_logging_redacts_secret_keys_and_bearer_tokens() -> None:
    """Secret-named keys (nested too), bearer tokens and URL passwords never reach the log."""
    # Prepare
    out = io.StringIO()
    configure_logging("info", stream=out, json=True)
    secret = "s3cr3t-value-XYZ"
    # Execute
    structlog.get_logger().info(
        f"sent Authorization: Bearer {secret}", api_key=secret, access_token=secret,
        password=secret, headers={"Authorization": f"Bearer {secret}"}, jwt_secret=secret,
        url=f"postgresql://v6:{secret}@db/v6", task_id=7)
    logging.getLogger("uvicorn.error").warning("token=%s header Bearer %s", "x", secret)
    # Assert
    entries = _json_lines(out)
    assert len(entries) == 2
    assert secret not in out.getvalue()
    first, second = entries
    assert first["api_key"] == first["access_token"] == first["password"] == REDACTED
    assert first["headers"] == {"Authorization": REDACTED}
    assert first["url"] == f"postgresql://v6:{REDACTED}@db/v6"
    assert first["task_id"] == 7
    assert second["logger"] == "uvicorn.error" and second["level"] == "warning"


@pytest.mark.usefixtures("fresh_logging")
def test_logging_timestamps_are_utc() -> None:
    """structlog and stdlib lines carry ISO timestamps in UTC."""
    # Prepare
    out = io.StringIO()
    configure_logging("debug", stream=out, json=True)
    # Execute
    structlog.get_logger().debug("one")
    logging.getLogger("server.test").info("two")
    # Assert
    stamps = [str(entry["timestamp"]) for entry in _json_lines(out)]
    assert len(stamps) == 2 and all(stamp.endswith("Z") for stamp in stamps)


@pytest.mark.usefixtures("fresh_logging")
def test_logging_level_filters_and_quiets_chatty_libraries() -> None:
    """At info, debug lines are dropped and httpx's per-request info lines too."""
    # Prepare
    out = io.StringIO()
    configure_logging("info", stream=out, json=True)
    # Execute
    structlog.get_logger().debug("hidden")
    logging.getLogger("httpx").info("HTTP Request: GET /")
    structlog.get_logger().info("shown")
    # Assert
    assert [entry["event"] for entry in _json_lines(out)] == ["shown"]


def _node_yaml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_node_start_names_every_bad_field(tmp_path: Path) -> None:
    """`v6flow node start` with several wrong fields lists all of them, exits 2."""
    # Prepare
    config = _node_yaml(tmp_path, "server_url: ftp://x\napi_key: k\ntask_dir: /tmp\n"
                                  "share_algorithm_logs: perhaps\nbogus: 1\n"
                                  "databases: [{label: 1x, uri: /nonexistent.csv}]\n")
    # Execute
    result = subprocess.run([*CLI, "node", "start", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    # Assert
    assert result.returncode == ExitCode.CONFIGURATION
    assert str(config) in result.stderr
    for field in ("server_url", "share_algorithm_logs", "bogus", "databases[0].label",
                  "databases[0].uri"):
        assert f"  {field}: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_node_file_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node keeps its documented order: node.yaml over V6FLOW_NODE_* (env fills gaps)."""
    # Prepare
    config = _node_yaml(tmp_path, f"server_url: http://127.0.0.1:1/api\napi_key: k\n"
                                  f"task_dir: {tmp_path}\npull_timeout: 5\n")
    monkeypatch.setenv("V6FLOW_NODE_PULL_TIMEOUT", "99")
    monkeypatch.setenv("V6FLOW_NODE_NAME", "from-env")
    # Execute
    settings = load_settings(NodeSettings, config, file_over_env=True)
    # Assert
    assert settings.pull_timeout == 5
    assert settings.name == "from-env"


def test_node_required_field_missing_everywhere_is_named(tmp_path: Path) -> None:
    """A field neither in the file nor the environment is reported as missing."""
    config = _node_yaml(tmp_path, "server_url: http://127.0.0.1:1/api\n")
    with pytest.raises(SettingsError) as info:
        load_settings(NodeSettings, config, file_over_env=True)
    assert {p.field for p in info.value.problems} == {"api_key", "task_dir"}


def test_malformed_json_in_a_variable_is_named(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A list setting given as broken JSON in the environment names the field and variable."""
    config = _node_yaml(tmp_path, f"server_url: http://127.0.0.1:1/api\napi_key: k\n"
                                  f"task_dir: {tmp_path}\n")
    monkeypatch.setenv("V6FLOW_NODE_DATABASES", "not json")
    with pytest.raises(SettingsError) as info:
        load_settings(NodeSettings, config, file_over_env=True)
    assert [(p.field, p.source) for p in info.value.problems] == [
        ("databases", "V6FLOW_NODE_DATABASES")]
