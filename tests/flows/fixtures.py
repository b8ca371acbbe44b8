"""Fixtures shared by tests/flows and tests/prefect (imported by both conftests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.flows.researcher import Researcher, make_researcher

SUMMARY_CONTEXT = Path(__file__).resolve().parents[2] / "flows" / "summary"


@pytest.fixture(scope="session")
def summary_image(algorithm_image: Any) -> str:
    """The summary algorithm image, built offline from flows/summary."""
    from flows.summary import SUMMARY_IMAGE

    tag: str = algorithm_image(SUMMARY_CONTEXT, SUMMARY_IMAGE)
    return tag


@pytest.fixture(scope="session")
def researcher(federation: Any) -> Researcher:
    """A researcher login in the federation (v4 lets only member users create tasks)."""
    return make_researcher(federation)
