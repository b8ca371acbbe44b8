"""Push to nodes and users: events, the EventBus seam and its in-process implementation.

Routes are synchronous (FastAPI runs them in a thread pool) and publish events only after
their transaction committed; ``publish`` is therefore callable from any thread.

Two implementations share one contract (``tests/server/test_bus_contract.py``):

- :class:`InProcessEventBus`: one server process (SQLite, or one replica);
- :class:`v6flow_server.events_pg.PostgresEventBus`: several replicas on one PostgreSQL database,
  over ``LISTEN/NOTIFY`` (notifications carry event row ids, bodies are read from the
  ``event`` table).

Both hand events to their local subscribers through :class:`Subscribers`. A subscriber whose
queue is full is not silently skipped: its queue is emptied and it gets ``sync`` (its stream
sends ``sync`` again, and nodes and clients re-read their open state, exactly as on a
reconnect); the same happens to every subscriber when the bus itself may have missed events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import structlog

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

from v6flow.schemas.events import EventName as EventName  # re-exported for routes, services

log = structlog.get_logger(__name__)

#: Default number of events a subscriber may have waiting before it is told to re-sync.
DEFAULT_QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Event:
    """One event of one collaboration; ``data`` is what the stream sends as JSON."""

    name: EventName
    collaboration_id: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_sse(self) -> str:
        """The Server-Sent-Events wire form: ``event: <name>\\ndata: <json>\\n\\n``."""
        return f"event: {self.name.value}\ndata: {json.dumps(self.data)}\n\n"


#: What a subscriber gets when it must re-read its state instead of awaiting what it missed.
SYNC = Event(EventName.SYNC, 0, {})

EventFilter = Callable[[Event], bool]


class Subscription(Protocol):
    """What a subscriber reads from."""

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None when ``timeout`` seconds passed without one.

        ``sync`` (:data:`SYNC`) means: events were lost for this subscriber (its queue
        overflowed, or the bus lost its connection); re-read the state, then go on.
        """


class EventBus(Protocol):
    """The seam between writers (routes, after commit) and event streams."""

    async def start(self) -> None:
        """Attach to the running event loop (called by the app's lifespan)."""

    async def stop(self) -> None:
        """Detach; subscribers stop receiving."""

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to matching subscribers (of every replica); any thread."""

    def subscribe(self, accept: EventFilter) -> AbstractAsyncContextManager[Subscription]:
        """Receive the events ``accept`` passes until the context exits."""


@runtime_checkable
class TransactionalBus(Protocol):
    """A bus that stores events in the database: they can be written by the request's own
    transaction (visible, and notified, exactly when it commits; gone when it rolls back)."""

    def write_in(self, session: Session, events: list[Event]) -> None:
        """Store ``events`` through ``session``, before its commit."""


class QueueSubscription:
    """A subscriber's bounded queue; touched only on the event loop."""

    def __init__(self, accept: EventFilter, size: int) -> None:
        """Accept what ``accept`` passes; at most ``size`` events wait."""
        self.accept = accept
        self.resyncs = 0
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)

    def offer(self, event: Event) -> None:
        """Queue ``event`` if accepted; a full queue turns into one ``sync``."""
        if not self.accept(event):
            return
        if self._queue.full():
            self.resync()
        if not self._queue.full():
            self._queue.put_nowait(event)

    def resync(self) -> None:
        """Forget what is waiting and tell the subscriber to re-read its state."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(SYNC)
        self.resyncs += 1

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout=timeout)
        except TimeoutError:
            return None


class Subscribers:
    """The subscribers of one process; every method runs on the event loop."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        """None yet; each gets a queue of ``queue_size`` events."""
        self.queue_size = queue_size
        self._all: set[QueueSubscription] = set()

    def dispatch(self, event: Event) -> None:
        """Offer ``event`` to every subscriber."""
        overflowed = 0
        for subscriber in list(self._all):
            before = subscriber.resyncs
            try:
                subscriber.offer(event)
            except Exception:  # one subscriber's filter must not starve the others
                log.exception("event_filter_failed", event_name=event.name.value)
                subscriber.resync()
            overflowed += subscriber.resyncs - before
        if overflowed:
            log.warning("event_subscribers_resynced", reason="queue full", count=overflowed)

    def resync_all(self, reason: str) -> None:
        """Tell every subscriber to re-read its state (events may have been missed)."""
        if self._all:
            log.warning("event_subscribers_resynced", reason=reason, count=len(self._all))
        for subscriber in list(self._all):
            subscriber.resync()

    def clear(self) -> None:
        """Forget every subscriber."""
        self._all.clear()

    @asynccontextmanager
    async def subscribe(self, accept: EventFilter) -> AsyncIterator[Subscription]:
        """A subscription that lives until the context exits."""
        subscription = QueueSubscription(accept, self.queue_size)
        self._all.add(subscription)
        try:
            yield subscription
        finally:
            self._all.discard(subscription)


class InProcessEventBus:
    """Event bus for a single server process."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        """Start detached; :meth:`start` binds the loop."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers = Subscribers(queue_size)

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
        loop.call_soon_threadsafe(self._subscribers.dispatch, event)

    def subscribe(self, accept: EventFilter) -> AbstractAsyncContextManager[Subscription]:
        """Receive accepted events until the context exits."""
        return self._subscribers.subscribe(accept)


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
