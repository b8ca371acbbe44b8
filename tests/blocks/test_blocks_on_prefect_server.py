"""The Blocks against a real local Prefect server and a real v6flow server.

``prefect block register -m prefect_v6flow`` (from the repository root) registers both block types;
a saved credentials Block keeps its password secret and its clients log in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from prefect_v6flow import V6flowCollaboration, V6flowServerCredentials
from prefect_v6flow._project import DOCUMENTATION_URL, LOGO_URL
from tests.deployments.prefect_server import REPO_ROOT, PrefectServer, prefect_api
from v6flow.errors import AuthenticationError

SLUGS = {"v6flow-server-credentials", "v6flow-collaboration"}


def test_block_register_command_registers_both_block_types(
        prefect_server: PrefectServer) -> None:
    """The documented CLI registers every Block of the module, password and key secret."""
    from prefect.client.orchestration import get_client

    # Execute
    done = subprocess.run(["prefect", "block", "register", "-m", "prefect_v6flow"], cwd=REPO_ROOT,
                          env=prefect_server.env(), capture_output=True, text=True,
                          timeout=120, check=False)
    with prefect_api(prefect_server), get_client(sync_client=True) as client:
        types = {slug: client.read_block_type_by_slug(slug) for slug in SLUGS}
        schema = client.get_most_recent_block_schema_for_block_type(
            types["v6flow-server-credentials"].id)
    # Assert
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully registered 2 blocks" in done.stdout
    assert types["v6flow-server-credentials"].name == "V6flow Server Credentials"
    assert types["v6flow-collaboration"].name == "V6flow Collaboration"
    assert schema is not None
    assert schema.fields["secret_fields"] == ["password", "private_key"]
    for block_type in types.values():  # what the UI's Blocks catalog shows
        assert str(block_type.logo_url) == LOGO_URL
        assert str(block_type.documentation_url) == DOCUMENTATION_URL
        assert block_type.description


def test_the_collection_entry_point_lets_prefect_find_the_blocks(tmp_path: Path) -> None:
    """pyproject's ``prefect.collections`` entry point, as installed metadata: Prefect's
    collection loader imports the package and resolves both Block slugs."""
    # Prepare: the project's metadata (egg-info) as an installed distribution would have it
    made = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()",
                           "-q", "egg_info", "-e", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    script = ("from prefect.plugins import load_prefect_collections\n"
              "from prefect.blocks.core import Block\n"
              "print(sorted(load_prefect_collections()))\n"
              "for slug in ('v6flow-server-credentials', 'v6flow-collaboration'):\n"
              "    print(Block.get_block_class_from_key(slug).__name__)\n")
    # Execute
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}"})
    # Assert
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "prefect_v6flow" in lines[0]
    assert lines[1:] == ["V6flowServerCredentials", "V6flowCollaboration"]


async def test_saved_credentials_load_back_secret_and_log_in(
        prefect_server: PrefectServer, server: Any) -> None:
    """Save → load by name: the password stays masked, and both clients log in as root."""
    from prefect.client.orchestration import get_client

    # Prepare
    name = f"v6flow-{uuid.uuid4().hex[:8]}"
    # Execute
    with prefect_api(prefect_server):
        await V6flowServerCredentials(url=server.url, username="root",
                                      password=server.root_password).asave(name)
        loaded: V6flowServerCredentials = await V6flowServerCredentials.aload(name)
        async with get_client() as api:
            stored = await api.read_block_document_by_name(
                name, "v6flow-server-credentials", include_secrets=False)
    with loaded.get_client() as client:
        me = client.whoami()
    async with loaded.get_async_client() as aclient:
        ame = await aclient.whoami()
    # Assert
    assert loaded.url == server.url and loaded.username == "root"
    assert repr(loaded.password) == "SecretStr('**********')"
    assert loaded.password.get_secret_value() == server.root_password
    assert stored.data["password"] != server.root_password  # obfuscated unless asked
    assert me.username == "root" and ame.username == "root"


async def test_saved_credentials_with_a_wrong_password_fail_to_log_in(
        prefect_server: PrefectServer, server: Any) -> None:
    """A Block with a wrong password loads fine and fails with AuthenticationError on use."""
    # Prepare
    name = f"v6flow-bad-{uuid.uuid4().hex[:8]}"
    with prefect_api(prefect_server):
        await V6flowServerCredentials(url=server.url, username="root",
                                      password="not-the-password").asave(name)  # type: ignore[arg-type]
        loaded: V6flowServerCredentials = await V6flowServerCredentials.aload(name)
    # Execute / Assert
    with loaded.get_client() as client, pytest.raises(AuthenticationError):
        client.login()


async def test_collaboration_block_round_trips(prefect_server: PrefectServer) -> None:
    """The collaboration Block keeps its organizations and databases."""
    # Prepare
    name = f"collab-{uuid.uuid4().hex[:8]}"
    # Execute
    with prefect_api(prefect_server):
        await V6flowCollaboration(collaboration_id=4, organizations=[2, 3],
                                  databases=[{"label": "default"}]).asave(name)
        loaded: V6flowCollaboration = await V6flowCollaboration.aload(name)
    # Assert
    assert loaded.collaboration_id == 4
    assert loaded.organization_ids() == [2, 3]
    assert loaded.databases == [{"label": "default"}]


async def test_collaboration_block_keeps_its_credentials_secret_and_usable(
        prefect_server: PrefectServer, server: Any) -> None:
    """A collaboration Block holding a credentials Block: saved, loaded by name, the
    password masked in the stored document and the loaded credentials log in."""
    from prefect.client.orchestration import get_client

    # Prepare
    name = f"collab-{uuid.uuid4().hex[:8]}"
    credentials = V6flowServerCredentials(url=server.url, username="root",
                                          password=server.root_password)
    # Execute
    with prefect_api(prefect_server):
        await credentials.asave(f"creds-{uuid.uuid4().hex[:8]}")
        await V6flowCollaboration(collaboration_id=5, credentials=credentials).asave(name)
        loaded: V6flowCollaboration = await V6flowCollaboration.aload(name)
        async with get_client() as api:
            stored = await api.read_block_document_by_name(
                name, "v6flow-collaboration", include_secrets=False)
    assert loaded.credentials is not None
    async with loaded.credentials.get_async_client() as client:
        me = await client.whoami()
    # Assert
    assert loaded.collaboration_id == 5
    assert repr(loaded.credentials.password) == "SecretStr('**********')"
    assert server.root_password not in str(stored.data)
    assert me.username == "root"
