"""The Blocks against a real local Prefect server and a real v6flow server.

``prefect block register -m blocks`` (from the repository root) registers both block types;
a saved credentials Block keeps its password secret and its clients log in.
"""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest

from blocks import V6flowCollaboration, V6flowServerCredentials
from tests.deployments.prefect_server import REPO_ROOT, PrefectServer, prefect_api
from v6flow.errors import AuthenticationError

SLUGS = {"v6flow-server-credentials", "v6flow-collaboration"}


def test_block_register_command_registers_both_block_types(
        prefect_server: PrefectServer) -> None:
    """The documented CLI registers every Block of the module, password and key secret."""
    from prefect.client.orchestration import get_client

    # Execute
    done = subprocess.run(["prefect", "block", "register", "-m", "blocks"], cwd=REPO_ROOT,
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
