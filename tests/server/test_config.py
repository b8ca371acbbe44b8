"""`v6flow server start --config server.yaml`: the file, the environment, errors and --help."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import BaseModel

from tests.fixtures.server import SERVER_COMMAND, START_DEADLINE, free_port
from v6flow._config import describe_settings, load_settings
from v6flow_server.settings import ServerSettings

SERVER = ("v6flow", "server")


def _write_yaml(path: Path, values: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def _start_with_config(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*SERVER_COMMAND, "--config", str(config)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no /api/health on port {port}:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("V6FLOW_SERVER_")}
    return {**env, **extra}


def test_yaml_file_sets_port_and_database(tmp_path: Path) -> None:
    """A server started with only --config listens on the file's port and uses its database."""
    # Prepare
    port, database = free_port(), tmp_path / "from-file.sqlite"
    config = _write_yaml(tmp_path / "server.yaml", {
        "port": port, "database_url": f"sqlite:///{database}",
        "root_password": secrets.token_urlsafe(12)})
    # Execute
    proc = _start_with_config(config, _clean_env(), tmp_path / "server.log")
    try:
        _wait_healthy(proc, port, tmp_path / "server.log")
        # Assert
        assert database.is_file() and database.stat().st_size > 0
    finally:
        _stop(proc)


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    """V6FLOW_SERVER_PORT overrides the file's port; the file's other settings still apply."""
    # Prepare
    file_port, env_port = free_port(), free_port()
    database = tmp_path / "db.sqlite"
    config = _write_yaml(tmp_path / "server.yaml", {
        "port": file_port, "database_url": f"sqlite:///{database}"})
    env = _clean_env(V6FLOW_SERVER_PORT=str(env_port),
                     V6FLOW_SERVER_ROOT_PASSWORD=secrets.token_urlsafe(12))
    # Execute
    proc = _start_with_config(config, env, tmp_path / "server.log")
    try:
        _wait_healthy(proc, env_port, tmp_path / "server.log")
        # Assert
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{file_port}/api/health", timeout=1)
        assert database.is_file()
    finally:
        _stop(proc)


def test_bad_file_names_the_file_and_every_field(tmp_path: Path) -> None:
    """Wrong type, unknown key and bad values: exit 2, one message naming all, no traceback."""
    # Prepare
    config = _write_yaml(tmp_path / "server.yaml", {
        "port": "seventy", "databse_url": "sqlite:///x", "log_level": "loud",
        "access_token_minutes": 0})
    # Execute
    result = subprocess.run([*SERVER_COMMAND, "--config", str(config)], env=_clean_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    # Assert
    assert result.returncode == 2
    assert str(config) in result.stderr
    for field in ("port", "databse_url", "log_level", "access_token_minutes"):
        assert re.search(rf"^\s+{field}: ", result.stderr, re.MULTILINE), result.stderr
    assert "did you mean 'database_url'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_error_says_which_source_holds_the_bad_value(tmp_path: Path) -> None:
    """A bad value from the environment is reported as coming from its variable."""
    # Prepare
    config = _write_yaml(tmp_path / "server.yaml", {"port": 7000})
    env = _clean_env(V6FLOW_SERVER_PORT="not-a-port")
    # Execute
    result = subprocess.run([*SERVER_COMMAND, "--config", str(config)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    # Assert
    assert result.returncode == 2
    assert "port:" in result.stderr and "(from V6FLOW_SERVER_PORT)" in result.stderr


@pytest.mark.parametrize(("content", "expected"), [
    (None, "cannot read the file"),
    ("port: [1\nroot_password: s3cret-value\n", "not valid YAML"),
    ("- port\n- 7601\n", "must be a YAML mapping"),
    ("port: 7601 \udcff\n", "not UTF-8 text"),
])
def test_unusable_file_exits_2_naming_it(tmp_path: Path, content: str | None,
                                         expected: str) -> None:
    """Missing file, broken YAML, a list: exit 2 naming the file; the file's text is not echoed."""
    # Prepare
    config = tmp_path / "server.yaml"
    if content is not None:
        config.write_bytes(content.encode("utf-8", "surrogateescape"))
    # Execute
    result = subprocess.run([*SERVER_COMMAND, "--config", str(config)], env=_clean_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    # Assert
    assert result.returncode == 2
    assert str(config) in result.stderr and expected in result.stderr
    assert "s3cret-value" not in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_help_lists_every_setting() -> None:
    """`server start --help` shows each ServerSettings field with its variable and description."""
    # Execute
    result = subprocess.run([*SERVER_COMMAND, "--help"], env=_clean_env(), capture_output=True,
                            text=True, timeout=60, check=True)
    # Assert
    lines = result.stdout.splitlines()
    for name, env, description in _leaf_settings(ServerSettings, "", "V6FLOW_SERVER_"):
        entry = next((i for i, line in enumerate(lines)
                      if line.strip().startswith(f"{name}  [{env}]  default: ")), None)
        assert entry is not None, f"{name} missing from --help:\n{result.stdout}"
        assert description in lines[entry + 1]


def _leaf_settings(model: type[BaseModel], prefix: str,
                   env_prefix: str) -> Iterator[tuple[str, str, str]]:
    """Every setting as (dotted name, env variable, description); sections are walked."""
    for name, info in model.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            yield from _leaf_settings(section, f"{prefix}{name}.",
                                      f"{env_prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name}", f"{env_prefix}{name.upper()}", info.description or ""


def test_template_has_every_setting_and_loads_to_the_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`server new` writes a 0600 server.yaml naming every field; loading it gives the defaults."""
    # Prepare
    path = tmp_path / "server.yaml"
    for key in [k for k in os.environ if k.startswith("V6FLOW_SERVER_")]:
        monkeypatch.delenv(key)
    # Execute
    subprocess.run([*SERVER, "new", str(path)], env=_clean_env(), check=True, timeout=60,
                   capture_output=True)
    # Assert
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    for doc in describe_settings(ServerSettings):
        *section, leaf = doc.key.split(".")
        indent = "  " * len(section)  # a section's settings are nested under its key
        assert re.search(rf"^{indent}#? ?{leaf}:", text, re.MULTILINE), doc.key
        assert all(re.search(rf"^{part}:", text, re.MULTILINE) for part in section), doc.key
        assert f"# env: {doc.env}" in text
    loaded = load_settings(ServerSettings, path)
    assert loaded == ServerSettings.model_construct()
    refused = subprocess.run([*SERVER, "new", str(path)], env=_clean_env(), timeout=60,
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr


def test_command_line_wins_over_environment_and_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--port beats V6FLOW_SERVER_PORT, which beats the file."""
    # Prepare
    config = _write_yaml(tmp_path / "server.yaml", {"port": 1111, "host": "127.0.0.2"})
    monkeypatch.delenv("V6FLOW_SERVER_HOST", raising=False)
    monkeypatch.setenv("V6FLOW_SERVER_PORT", "2222")
    # Execute
    from_env = load_settings(ServerSettings, config)
    from_option = load_settings(ServerSettings, config, overrides={"port": 3333})
    # Assert
    assert (from_env.port, from_env.host) == (2222, "127.0.0.2")
    assert from_option.port == 3333
    assert type(from_env) is ServerSettings


def test_bad_database_in_file_is_named(tmp_path: Path) -> None:
    """A database URL from the file that cannot be used exits 2 naming database_url."""
    # Prepare
    config = _write_yaml(tmp_path / "server.yaml", {
        "database_url": f"sqlite:///{tmp_path}/missing-dir/db.sqlite", "port": free_port()})
    # Execute
    result = subprocess.run([*SERVER_COMMAND, "--config", str(config)],
                            env=_clean_env(V6FLOW_SERVER_ROOT_PASSWORD="pw-pw-pw-pw"),
                            capture_output=True, text=True, timeout=60, check=False)
    # Assert
    assert result.returncode == 2
    assert "database_url" in result.stderr and "Traceback" not in result.stderr
