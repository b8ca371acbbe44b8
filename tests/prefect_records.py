"""Reading what Prefect recorded about a flow run, allowing for its eventual consistency.

Prefect records task runs from client events in the background (websocket → task-run
recorder), so right after a flow run returns its task runs may not all be readable yet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


async def recorded_task_runs(client: PrefectClient, flow_run_id: UUID, *, expected: int = 0,
                             timeout: float = 30) -> list[Any]:
    """The flow run's task runs, once at least ``expected`` are recorded in a final state.

    Returns what is recorded when ``timeout`` passes first (the caller's assertion then says
    what is missing).
    """
    deadline = time.monotonic() + timeout
    while True:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        if len(final) >= expected or time.monotonic() >= deadline:
            return list(runs)
        await asyncio.sleep(0.2)


def drain_prefect_events() -> None:
    """Flush and forget Prefect's process-wide events worker.

    Prefect keeps one events worker per client type, and for a running server its key does
    not include the API URL: after a test switched ``PREFECT_API_URL`` to a server that has
    since stopped, the next flow's events (task runs included) would still go to the dead
    server. Draining drops that worker; the next event creates one for the current URL.
    """
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        result = EventsWorker.drain_all()
        if inspect.isawaitable(result):
            await result

    run_coro_as_sync(drain())


async def flow_run_events(flow_run_id: UUID, wanted: dict[str, int], *,
                          prefix: str = "v6flow.", timeout: float = 30) -> list[dict[str, Any]]:
    """The events named ``prefix*`` related to the flow run, once each name in ``wanted``
    has at least that many (the server persists events in the background).

    Returns what is recorded when ``timeout`` passes first (the assertion says what is
    missing). Each event is the API's JSON: ``event``, ``resource``, ``related``, ``payload``.
    """
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"filter": {"event": {"prefix": [prefix]},
                       "related": {"id": [f"prefect.flow-run.{flow_run_id}"]}},
            "limit": 50}
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=str(PREFECT_API_URL.value()), timeout=10) as http:
        while True:
            response = await http.post("/events/filter", json=body)
            response.raise_for_status()
            events: list[dict[str, Any]] = response.json()["events"]
            names = [e["event"] for e in events]
            if all(names.count(name) >= n for name, n in wanted.items()) \
                    or time.monotonic() >= deadline:
                return events
            await asyncio.sleep(0.3)
