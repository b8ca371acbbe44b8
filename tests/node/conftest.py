"""Fixtures of the node tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

PROBE_DIR = Path(__file__).resolve().parent / "algorithms" / "probe"
PROBE_IMAGE = "v6flow-test/node-probe:latest"


@pytest.fixture(scope="session")
def probe_image(algorithm_image: Callable[..., str]) -> str:
    """``v6flow-test/node-probe:latest``: network, mount and live-log probes."""
    return algorithm_image(PROBE_DIR, PROBE_IMAGE)
