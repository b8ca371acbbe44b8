"""Block tests run against the same real local Prefect server as tests/deployments."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from tests.deployments.prefect_server import PrefectServer, shared_prefect_server

__all__ = ["prefect_server"]


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The session's local Prefect server (shared with tests/deployments)."""
    yield from shared_prefect_server(tmp_path_factory)
