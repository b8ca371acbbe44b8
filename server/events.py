"""Push to nodes and users: events, the EventBus seam and its in-process implementation.

Routes are synchronous (FastAPI runs them in a thread pool) and publish events only after
their transaction committed; :meth:`InProcessEventBus.publish` is therefore thread-safe and
hands the event to the event loop with ``loop.call_soon_threadsafe``. Several server
replicas would swap in a PostgreSQL ``LISTEN/NOTIFY`` implementation of :class:`EventBus`:
``publish`` becomes ``NOTIFY v6flow_events, <json>`` and one listener task per replica feeds
its local subscribers, exactly as ``_dispatch`` does here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from v6flow.schemas.events import EventName as EventName  # re-exported for routes, services


@dataclass(frozen=True)
class Event:
    """One event of one collaboration; ``data`` is what the stream sends as JSON."""

    name: EventName
    collaboration_id: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_sse(self) -> str:
        """The Server-Sent-Events wire form: ``event: <name>\\ndata: <json>\\n\\n``."""
        return f"event: {self.name.value}\ndata: {json.dumps(self.data)}\n\n"


EventFilter = Callable[[Event], bool]


class Subscription(Protocol):
    """What a subscriber reads from."""

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None when ``timeout`` seconds passed without one."""


class EventBus(Protocol):
    """The seam between writers (routes, after commit) and event streams."""

    async def start(self) -> None:
        """Attach to the running event loop (called by the app's lifespan)."""

    async def stop(self) -> None:
        """Detach; subscribers stop receiving."""

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to matching subscribers; callable from any thread."""

    def subscribe(self, accept: EventFilter) -> Any:
        """Async context manager yielding a :class:`Subscription` of accepted events."""


class _QueueSubscription:
    def __init__(self, accept: EventFilter) -> None:
        self.accept = accept
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)

    async def get(self, timeout: float) -> Event | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout=timeout)
        except TimeoutError:
            return None


class InProcessEventBus:
    """Event bus for a single server process."""

    def __init__(self) -> None:
        """Start detached; :meth:`start` binds the loop."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[_QueueSubscription] = set()

    async def start(self) -> None:
        """Remember the running loop, the one every subscriber lives on."""
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Forget the loop and all subscribers."""
        self._loop = None
        self._subscribers.clear()

    def publish(self, event: Event) -> None:
        """Schedule delivery on the loop; safe from worker threads and from the loop itself."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            if subscriber.accept(event) and not subscriber.queue.full():
                subscriber.queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, accept: EventFilter) -> AsyncIterator[Subscription]:
        """Receive accepted events until the context exits."""
        subscription = _QueueSubscription(accept)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)


class Outbox:
    """Events collected during one transaction, published only after it committed."""

    def __init__(self) -> None:
        """Start empty."""
        self.events: list[Event] = []

    def emit(self, name: EventName, *, collaboration_id: int, **data: Any) -> None:
        """Queue an event for after the commit; ``collaboration_id`` is also put in its data."""
        payload = {**data, "collaboration_id": collaboration_id}
        self.events.append(Event(name, collaboration_id, payload))

    def flush_to(self, bus: EventBus) -> None:
        """Publish and forget the queued events."""
        events, self.events = self.events, []
        for event in events:
            bus.publish(event)
