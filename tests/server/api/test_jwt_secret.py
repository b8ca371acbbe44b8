"""The JWT signing key stays out of the database: a backup cannot forge tokens.

The key lives in a file beside the database (mode 0600) or in the settings. A database of an
earlier version, which kept the key in ``server_setting``, has it moved into the file at start,
and the tokens issued before the upgrade stay valid.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import MetaData, String, Text, create_engine, select

from tests.fixtures.server import ServerProcess, server_env, start_server
from tests.server.conftest import HTTP, auth
from v6flow_server.auth.tokens import TokenIssuer
from v6flow_server.settings import ServerSettings

ROOT_USER_ID_QUERY = "SELECT id FROM user WHERE username = 'root'"


def _stored_strings(database_url: str) -> set[str]:
    """Every text value of every table of the database."""
    engine = create_engine(database_url)
    metadata = MetaData()
    metadata.reflect(engine)
    values: set[str] = set()
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            if columns:
                for row in connection.execute(select(*columns)):
                    values.update(v for v in row if isinstance(v, str) and v)
    engine.dispose()
    return values


def _key_of(proc: ServerProcess) -> str:
    return ServerSettings(database_url=proc.database_url).secret_file().read_text().strip()


def test_no_row_of_any_table_holds_the_signing_key(api_server: ServerProcess) -> None:
    """After start, the key is in its file and nowhere in the database."""
    key = _key_of(api_server)
    stored = _stored_strings(api_server.database_url)
    assert stored, "the database should hold some text (users, rules...)"
    assert not [value for value in stored if key in value]


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # short candidates are the point
def test_a_token_forged_with_what_the_database_holds_is_refused(api_server: ServerProcess) -> None:
    """Signing a root token with any text value of the database gives 401."""
    # Prepare: a token that would be root's if the key were right.
    root = HTTP.post(f"{api_server.url}/token/user",
                     json={"username": "root", "password": api_server.root_password}).json()
    root_id = int(root["user_url"].rsplit("/", 1)[1])
    candidates = sorted(_stored_strings(api_server.database_url))
    assert HTTP.get(f"{api_server.url}/organization",
                    headers=auth(root["access_token"])).status_code == 200
    # Execute / Assert
    for candidate in candidates:
        forged = TokenIssuer(secret=candidate, access_minutes=5, refresh_minutes=5).issue_pair(
            subject_id=root_id, client_type="user").access_token
        response = HTTP.get(f"{api_server.url}/organization", headers=auth(forged))
        assert response.status_code == 401, candidate[:40]


def test_the_key_file_only_its_owner_may_read(api_server: ServerProcess) -> None:
    """The generated key file has mode 0600."""
    path = ServerSettings(database_url=api_server.database_url).secret_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_old_database_keeps_its_key_and_its_tokens(tmp_path: Path) -> None:
    """A key left in server_setting moves into the file; tokens signed with it stay valid."""
    # Prepare: a database as an earlier version left it: the key in a row, no key file.
    database = tmp_path / "old.sqlite"
    url, password = f"sqlite:///{database}", secrets.token_urlsafe(12)
    start_server(database_url=url, root_password=password, log_dir=tmp_path).stop()
    key_file = Path(f"{database}.jwt-secret")
    key_file.unlink()
    old_key = secrets.token_urlsafe(48)
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO server_setting (key, value) VALUES ('jwt_secret', ?)",
                           (old_key,))
        root_id = connection.execute(ROOT_USER_ID_QUERY).fetchone()[0]
    issued_before = TokenIssuer(secret=old_key, access_minutes=60, refresh_minutes=60
                                ).issue_pair(subject_id=root_id, client_type="user")
    # Execute: the upgraded server starts on it.
    proc = start_server(database_url=url, root_password=password, log_dir=tmp_path)
    try:
        # Assert
        access = HTTP.get(f"{proc.url}/organization", headers=auth(issued_before.access_token))
        refresh = HTTP.post(f"{proc.url}/token/refresh",
                            headers=auth(issued_before.refresh_token))
        assert (access.status_code, refresh.status_code) == (200, 200)
        assert key_file.read_text().strip() == old_key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert not [v for v in _stored_strings(url) if old_key in v]
    finally:
        proc.stop()


def test_a_key_file_others_may_read_stops_the_start(tmp_path: Path) -> None:
    """A world-readable key file is refused with a message naming jwt_secret_file."""
    key_file = tmp_path / "key"
    key_file.write_text(secrets.token_urlsafe(32))
    os.chmod(key_file, 0o644)
    env = server_env(f"sqlite:///{tmp_path}/s.sqlite", secrets.token_urlsafe(12),
                     {"V6FLOW_SERVER_JWT_SECRET_FILE": str(key_file)})
    done = subprocess.run(["v6flow", "server", "start", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "jwt_secret_file" in done.stderr and "chmod 600" in done.stderr


@pytest.mark.parametrize("configured", [True, False], ids=["setting", "file"])
def test_tokens_survive_a_restart(tmp_path: Path, configured: bool) -> None:
    """A token issued before a restart is accepted after it (the key is kept, not renewed)."""
    url, password = f"sqlite:///{tmp_path}/s.sqlite", secrets.token_urlsafe(12)
    extra = {"V6FLOW_SERVER_JWT_SECRET": secrets.token_urlsafe(32)} if configured else {}
    first = start_server(database_url=url, root_password=password, log_dir=tmp_path,
                         extra_env=extra)
    token = HTTP.post(f"{first.url}/token/user",
                      json={"username": "root", "password": password}).json()["access_token"]
    first.stop()
    second = start_server(database_url=url, root_password=password, log_dir=tmp_path,
                          extra_env=extra)
    try:
        assert HTTP.get(f"{second.url}/organization", headers=auth(token)).status_code == 200
        assert Path(f"{tmp_path}/s.sqlite.jwt-secret").exists() is not configured
    finally:
        second.stop()
