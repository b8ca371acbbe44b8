"""Deployment tests: a real local ``prefect server start`` (session), not the test harness.

Fixtures: ``prefect_server`` (session), ``own_summary_image`` (session) and ``researcher``.
The ``slow`` marker flags tests that take tens of seconds but are required (never skipped).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from tests.deployments.prefect_server import PrefectServer, shared_prefect_server
from tests.flows.fixtures import SUMMARY_CONTEXT, researcher

__all__ = ["own_summary_image", "prefect_server", "researcher"]


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """``prefect server start --host 127.0.0.1 --port <free>``, private PREFECT_HOME."""
    yield from shared_prefect_server(tmp_path_factory)


@pytest.fixture(scope="session")
def own_summary_image(algorithm_image: Any, docker_client: Any) -> Iterator[str]:
    """The summary image under a tag of this session only (built from flows/v6flow_flows/summary).

    Other test sessions on the same engine may rebuild ``v6flow/summary:0.1.0`` from another
    checkout at any moment; a private ``v6flow-test/…`` tag (allowed by the test nodes)
    keeps this session's image the one of this working tree. Removed at teardown.
    """
    tag: str = algorithm_image(SUMMARY_CONTEXT,
                               f"v6flow-test/summary-{uuid.uuid4().hex[:8]}:latest")
    yield tag
    with contextlib.suppress(Exception):
        docker_client.images.remove(tag, force=True)
