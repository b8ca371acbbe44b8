"""Waiting for one task on a push subscription opened before the task existed.

Used by the fan-out (:mod:`v6flow.client.federated`): subscribe first, create the task, then
wait here, so no pushed log line or status change can be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from v6flow._sse import Event
from v6flow.client._async import AsyncClient, EventStream
from v6flow.client._watch import LogLines, TaskWatch, log_lines
from v6flow.errors import ClientError, TaskTimeout
from v6flow.schemas import EventName
from v6flow.status import RunStatus

#: How long a finished wait reads on for log lines pushed just before the end.
LOG_DRAIN_SECONDS = 2.0


async def subscribe(client: AsyncClient, stack: contextlib.AsyncExitStack
                     ) -> EventStream | None:
    """The push channel, or None when the server has none (then the wait polls)."""
    with contextlib.suppress(ClientError):
        return await stack.enter_async_context(client.events())
    return None


async def wait_on_stream(client: AsyncClient, stream: EventStream | None, task_id: int,
                timeout: float | None, on_log: Callable[[LogLines], None] | None
                ) -> RunStatus:
    """``AsyncClient.wait_for_task`` on a subscription opened before the task existed."""
    if stream is None:
        return await client.wait_for_task(task_id, timeout, on_log=on_log)
    watch = TaskWatch(task_id)
    event: Event | None = Event(EventName.SYNC)
    try:
        async with asyncio.timeout(timeout):
            while True:
                _forward(event, task_id, on_log)
                watch.observe(event)
                now = time.monotonic()
                if watch.needs_check(event, now):
                    watch.checked(now)
                    status = await client.task.status(task_id)
                    if status.is_finished:
                        await _drain_logs(stream, watch, on_log)
                        return status
                event = await stream.next(timeout=watch.poll_interval)
    except TimeoutError as exc:
        raise TaskTimeout(task_id, timeout or 0.0) from exc


def _forward(event: Event | None, task_id: int,
             on_log: Callable[[LogLines], None] | None) -> None:
    batch = None if event is None else log_lines(event, task_id)
    if batch is not None and on_log is not None:
        on_log(batch)


async def _drain_logs(stream: EventStream, watch: TaskWatch,
                      on_log: Callable[[LogLines], None] | None,
                      grace: float = LOG_DRAIN_SECONDS) -> None:
    """Forward the log lines still queued when the status read says finished.

    A wait that starts late (e.g. after a slow Prefect API call) reads a finished status
    before it has consumed the pushed events; the run's final ``run_update`` follows all of
    its log lines on the stream, so reading up to it loses no line.
    """
    deadline = time.monotonic() + grace
    while not watch.final_update_seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        event = await stream.next(timeout=remaining)
        if event is None:
            return
        _forward(event, watch.task_id, on_log)
        watch.observe(event)
