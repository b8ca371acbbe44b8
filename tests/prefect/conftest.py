"""Prefect engine tests: one ``prefect_test_harness`` for the whole session (never per test)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from tests.flows.fixtures import researcher, summary_image
from tests.prefect_records import drain_prefect_events

__all__ = ["prefect_harness", "researcher", "summary_image"]


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temporary Prefect API (own SQLite) and result storage (cached partial results)
    for every engine test in this folder."""
    storage = tmp_path_factory.mktemp("prefect-results")
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: storage}), \
            prefect_test_harness(server_startup_timeout=120):
        drain_prefect_events()  # no events worker bound to an earlier test's Prefect API
        asyncio.run(_events_pipeline_ready())
        yield


@task
async def _noop() -> int:
    return 1


@flow
async def _warm_up() -> int:
    return await _noop()


async def _events_pipeline_ready(attempts: int = 3, timeout: float = 20) -> None:
    """Run a one-task flow until Prefect has recorded its task run.

    Task runs are recorded from client events (websocket → task-run recorder). Right after
    the harness starts, the first flow's events can fail to send ("EventsWorker failed to
    process item") and its task runs are then never recorded; the tests read task runs
    back, so they start only once the pipeline has shown it works.
    """
    for _ in range(attempts):
        state = await _warm_up(return_state=True)  # type: ignore[call-overload]
        flow_run_id = state.state_details.flow_run_id
        deadline = time.monotonic() + timeout
        async with get_client() as client:
            while time.monotonic() < deadline:
                runs = await client.read_task_runs(flow_run_filter=_by_flow_run(flow_run_id))
                if runs:
                    return
                await asyncio.sleep(0.25)
    raise AssertionError("Prefect recorded no task run of a warm-up flow: events pipeline down")


def _by_flow_run(flow_run_id: object) -> FlowRunFilter:
    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
