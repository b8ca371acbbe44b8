"""Prefect inside a node's algorithm container: the two ways a central flow runs.

- With the server's Prefect API (:func:`send_events_over_http`, :func:`flush`): the flow
  runs in Prefect's engine and reports through the node proxy.
- Without any Prefect API (:func:`run_without_api`): the flow's function runs as a plain
  function after Prefect's own parameter validation.


A central flow (:mod:`v6flow.algorithm.central`) reports to the server's Prefect API through
the node proxy (``PREFECT_API_URL=<proxy>/prefect``, ``PREFECT_API_KEY=<container token>``).
Orchestration and logs are plain HTTP, but Prefect's events client speaks WebSocket
(``/events/in``), which neither the proxy nor the server relays; task runs exist in the API
only through their events. :func:`send_events_over_http` therefore hands Prefect's events
worker a :class:`HttpEventSink`: it posts the events in batches to ``POST /events`` (the
Prefect API's own HTTP route) from a thread of its own, so the flow never waits for them.
:func:`flush` sends what is left before the container exits.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from prefect.events.worker import EventsWorker, ProcessPoolForwardingEventsClient
from prefect.logging.handlers import APILogWorker
from prefect.utilities.callables import get_call_parameters

from v6flow.errors import AlgorithmError

log = logging.getLogger("v6flow.algorithm")

#: Most bytes of events in one ``POST /events`` (the server accepts 8 MiB by default).
MAX_BATCH_BYTES = 1024 * 1024
#: Attempts of one batch when the API cannot be reached or answers 429/5xx.
ATTEMPTS = 4
#: Events waiting to be sent beyond which new ones are dropped (and counted).
MAX_WAITING = 10_000
_RETRY_STATUS = frozenset({429, 502, 503, 504})


class HttpEventSink:
    """Takes Prefect events (``put``) and posts them in batches to ``<api>/events``.

    It is the ``event_queue`` of Prefect's ``ProcessPoolForwardingEventsClient``: the events
    worker calls ``put(("event", event))`` and moves on; a daemon thread sends whatever has
    accumulated as one request, so a burst of task-run state changes costs one round trip.
    """

    def __init__(self, api_url: str, api_key: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        """Start the sending thread.

        Args:
            api_url: the Prefect API (the proxy's ``/prefect``).
            api_key: sent as ``Authorization: Bearer`` (the container token).
            timeout: of one request.
            transport: for tests; default: the network.
        """
        self._client = httpx.Client(
            base_url=api_url.rstrip("/") + "/", timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
        self._queue: queue.SimpleQueue[str | threading.Event] = queue.SimpleQueue()
        self.sent = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="v6flow-events", daemon=True)
        self._thread.start()

    def put(self, item: tuple[str, Any]) -> None:
        """Queue one ``(item_type, event)`` (never blocks, never raises; beyond
        :data:`MAX_WAITING` waiting events it is dropped)."""
        if self._queue.qsize() >= MAX_WAITING:
            self.dropped += 1
            return
        try:
            self._queue.put(item[1].model_dump_json())
        except Exception as exc:  # an event that does not serialise must not stop the flow
            self.dropped += 1
            log.warning("prefect event not sent: %s", exc)

    def flush(self, timeout: float) -> bool:
        """Wait until every event queued so far was sent (or given up); False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            batch, markers = self._next_batch()
            if batch:
                self._send(batch)
            for marker in markers:
                marker.set()

    def _next_batch(self) -> tuple[list[str], list[threading.Event]]:
        """Block for one item, then take what else is waiting (up to the batch size)."""
        batch: list[str] = []
        markers: list[threading.Event] = []
        size = 0
        item = self._queue.get()
        while True:
            if isinstance(item, threading.Event):
                markers.append(item)
                return batch, markers  # everything before the marker is in this batch
            batch.append(item)
            size += len(item)
            if size >= MAX_BATCH_BYTES:
                return batch, markers
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, markers

    def _send(self, batch: list[str]) -> None:
        body = "[" + ",".join(batch) + "]"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._client.post("events", content=body)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.status_code < 300:
                    self.sent += len(batch)
                    return
                problem = f"{response.status_code} {response.text[:300]}"
                if response.status_code not in _RETRY_STATUS:
                    break
            if attempt < ATTEMPTS:
                time.sleep(0.25 * 2 ** attempt)
        self.dropped += len(batch)
        log.warning("%d prefect events not sent: %s", len(batch), problem)

    def close(self) -> None:
        """Close the connection (the thread ends with the process)."""
        self._client.close()


def send_events_over_http(api_url: str, api_key: str) -> HttpEventSink:
    """Make Prefect's events worker send this process's events through an HTTP sink."""
    sink = HttpEventSink(api_url, api_key)
    # Prefect emits only through the client types it knows; this one forwards to ``put``.
    EventsWorker.set_client_override(ProcessPoolForwardingEventsClient, event_queue=sink,
                                     item_type="event")
    return sink


def flush(sink: HttpEventSink, timeout: float = 30.0,
          clock: Callable[[], float] = time.monotonic) -> float:
    """Send the logs and events still queued: Prefect's workers, then the sink.

    Returns:
        The seconds it took.
    """
    started = clock()
    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)
    sink.flush(max(1.0, timeout - (clock() - started)))
    return clock() - started


#: What Prefect says when something needs an API and there is none.
_NO_API = "No Prefect API URL provided"


def run_without_api(flow: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """Call the flow's function without Prefect's engine or any API, and return its value.

    The parameters are bound and validated as Prefect's engine would (a bad value names the
    parameter). The v6flow fan-out works without a flow run (:func:`v6flow.prefect.run_partial`
    then runs the plain fan-out: no task runs, no retries, no artifacts).

    Raises:
        AlgorithmError: the flow called a Prefect task directly (tasks need an API).
        Exception: whatever the flow's function raises, and Prefect's parameter errors.
    """
    parameters = get_call_parameters(flow.fn, tuple(args), kwargs)
    if getattr(flow, "should_validate_parameters", True):
        parameters = flow.validate_parameters(parameters)
    try:
        value = flow.fn(**parameters)
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
    except ValueError as exc:
        if _NO_API not in str(exc):
            raise
        raise AlgorithmError(
            "the flow calls a Prefect task directly, which needs a Prefect API, and the "
            "server forwards to none: set prefect.api_url on the server, or "
            "V6FLOW_CENTRAL_PREFECT=ephemeral in the node's algorithm_env") from exc
    return value


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
