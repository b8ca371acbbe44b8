"""A Prefect flow on an encrypted collaboration: the key from a saved Block, never a parameter."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from pydantic import SecretStr

from prefect_v6flow import V6flowServerCredentials
from tests.fixtures.encrypted_federation import create_encrypted_federation, keys_of
from tests.fixtures.federation import Federation, shutdown_federation
from tests.fixtures.server import ServerProcess
from v6flow_flows.parameters import Federation as FlowFederation
from v6flow_flows.parameters import resolve_connection

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def enc(server: ServerProcess, base_image: str, test_algorithm_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """3 organizations with keys, an encrypted collaboration and 3 nodes with encryption."""
    fed = create_encrypted_federation(server_url=server.url, root_password=server.root_password,
                                      directory=tmp_path_factory.mktemp("encrypted-flow"),
                                      base_image=base_image, test_image=test_algorithm_image,
                                      sizes=(50, 30))
    yield fed
    shutdown_federation(fed)


@flow
async def encrypted_age_stats(collaboration_id: int, image: str,
                              credentials_block: str) -> dict[int, Any]:
    """column_stats of 'age' at every organization, through the flows' connection hook."""
    connection = await resolve_connection(FlowFederation(
        collaboration_id=collaboration_id, credentials_block=credentials_block), image=image)
    return await connection.run_partial("column_stats", kwargs={"column": "age"})


@pytest.mark.parametrize("source", ["pem", "path"])
async def test_flow_reads_an_encrypted_collaboration_with_the_blocks_key(
        enc: Federation, source: str) -> None:
    """The saved Block's key (secret PEM, or a file path) decrypts; no parameter or log of
    the flow run holds the key."""
    # Prepare
    key_file: Path = keys_of(enc)[enc.organization_ids[0]]
    pem = key_file.read_text()
    key = ({"private_key": SecretStr(pem)} if source == "pem"
           else {"private_key_path": str(key_file)})
    name = f"enc-{uuid.uuid4().hex[:8]}"
    await V6flowServerCredentials(url=enc.server_url, username=enc.username,
                                  password=SecretStr(enc.password), **key).asave(name)
    # Execute
    state: Any = await encrypted_age_stats(enc.collaboration_id, enc.test_image, name,
                                           return_state=True)
    results = await state.result()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    await APILogHandler.aflush()
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        # Prefect ships logs from a background worker: wait until they have arrived.
        deadline = time.monotonic() + 30
        while True:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(
                any_=[flow_run_id])))
            if logs or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    loaded = await V6flowServerCredentials.aload(name)
    # Assert
    for node in enc.nodes:
        ages = pd.read_csv(node.csv_path)["age"].dropna()
        assert results[node.organization_id]["count"] == int(ages.count())
        assert abs(results[node.organization_id]["sum"] - float(ages.sum())) < 1e-9
    body = pem.splitlines()[5]  # a line of key material
    assert run.parameters == {"collaboration_id": enc.collaboration_id,
                              "image": enc.test_image, "credentials_block": name}
    assert logs and not any(body in log.message or "PRIVATE KEY" in log.message
                            for log in logs)
    assert body not in repr(loaded) and "PRIVATE KEY" not in repr(loaded)
