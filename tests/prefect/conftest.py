"""Prefect engine tests: one ``prefect_test_harness`` for the whole session (never per test)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect.testing.utilities import prefect_test_harness

from tests.flows.fixtures import researcher, summary_image

__all__ = ["prefect_harness", "researcher", "summary_image"]


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API (own SQLite) for every engine test in this folder."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
