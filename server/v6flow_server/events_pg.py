"""The event bus of several server replicas: PostgreSQL ``LISTEN/NOTIFY`` over an event table.

``publish`` inserts the event into the ``event`` table and, in the same transaction,
``NOTIFY v6flow_events, '<row id>'``; PostgreSQL delivers the notification to every
listening replica when that transaction commits. A request's own events are written the same
way inside the request's transaction (``write_in``, called by the unit of work before its
commit), so they exist exactly when its change does. Each replica keeps one connection (psycopg
3, async) that ``LISTEN``s, reads the bodies of the notified ids in one ``SELECT`` and hands
them to its local subscribers (:class:`v6flow_server.events.Subscribers`). A notification thus
carries a few digits whatever the event's size, and NOTIFY's 8000-byte payload limit never
applies (``algorithm_log`` lines are up to ``max_log_line_bytes`` each).

The table is bounded by time: rows older than ``retention_seconds`` are deleted (by every
replica, every quarter of that period, at least every 30 s); a row's size is bounded by the
request that published it (``max_log_line_bytes`` per live log line, the body limits). A
listener that falls further behind than the retention window, or whose connection broke,
cannot know what it missed: its subscribers get ``sync`` and re-read their state. A publish
that failed (database away) makes the next successful one tell all replicas to do the same
(``NOTIFY v6flow_events, 'resync'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow
from sqlalchemy import Engine, Text, bindparam, cast, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from v6flow.wire import utcnow
from v6flow_server.db.models import EventRow
from v6flow_server.events import (
    DEFAULT_QUEUE_SIZE,
    Event,
    EventFilter,
    EventName,
    Subscribers,
    Subscription,
)

log = structlog.get_logger(__name__)

CHANNEL = "v6flow_events"
#: A notification that tells every replica's subscribers to re-sync.
RESYNC = "resync"
#: Rows past the retention window are deleted at least this often (seconds).
_PRUNE_EVERY = 30.0
#: At most this many notified ids are read in one SELECT.
_BATCH = 500


def libpq_url(engine: Engine) -> str:
    """The engine's database as a libpq URL (``postgresql://``) for a psycopg connection."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresEventBus:
    """Event bus shared by every replica on one PostgreSQL database."""

    def __init__(self, *, engine: Engine, queue_size: int = DEFAULT_QUEUE_SIZE,
                 retention_seconds: float = 300.0, channel: str = CHANNEL,
                 heartbeat_seconds: float = 10.0, reconnect_seconds: float = 1.0) -> None:
        """Detached until :meth:`start`.

        Args:
            engine: the server's (synchronous) engine; ``publish`` writes through it.
            queue_size: events one subscriber may have waiting before it must re-sync.
            retention_seconds: how long event rows are kept.
            channel: the NOTIFY channel (one per deployment and database).
            heartbeat_seconds: an idle listener checks its connection this often.
            reconnect_seconds: pause before the listener connects again after a failure.
        """
        self._engine = engine
        self._conninfo = libpq_url(engine)
        self._retention = retention_seconds
        self._channel = channel
        self._heartbeat = heartbeat_seconds
        self._reconnect = reconnect_seconds
        self._subscribers = Subscribers(queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        self._lost = threading.Event()  # a publish failed: all replicas must re-sync
        # What write_in executes, built once (SQLAlchemy then finds its compiled form without
        # re-deriving its cache key): the event row, and the notification of its id.
        table = EventRow.__table__
        stored = insert(EventRow).values(
            {name: bindparam(name, type_=table.c[name].type)
             for name in ("created_at", "name", "collaboration_id", "data")},
        ).returning(EventRow.id).cte("stored")
        self._store_and_notify = select(func.pg_notify(channel, cast(stored.c.id, Text)))

    async def start(self, *, timeout: float = 10.0) -> None:
        """Start listening; returns once ``LISTEN`` is active (or after ``timeout``)."""
        self._loop = asyncio.get_running_loop()
        self._listening = asyncio.Event()
        self._jobs = [asyncio.create_task(self._listen(), name="event-bus-listen"),
                      asyncio.create_task(self._prune_job(), name="event-bus-prune")]
        try:
            await asyncio.wait_for(self._listening.wait(), timeout=timeout)
        except TimeoutError:
            log.warning("event_bus_not_listening_yet", timeout=timeout)

    async def stop(self) -> None:
        """Stop listening and pruning; forget every subscriber."""
        self._loop = None
        for job in self._jobs:
            job.cancel()
        for job in self._jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        self._jobs = []
        self._subscribers.clear()

    # --- writing ------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """Store ``event`` and notify every replica (in a worker thread when on the loop)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            loop.run_in_executor(None, self._write, event)
        else:
            self._write(event)

    def write_in(self, session: Session, events: list[Event]) -> None:
        """Store ``events`` and NOTIFY in the request's transaction (before its commit).

        PostgreSQL delivers the notifications when that transaction commits, and discards
        rows and notifications when it rolls back: a request publishes no event of its own
        in another transaction (one connection, one commit less per write request).
        """
        if self._loop is None:  # not started (no listener): nothing to tell
            return
        for event in events:  # one statement each: the row, and the notification of its id
            session.execute(self._store_and_notify, {
                "created_at": utcnow(), "name": event.name.value,
                "collaboration_id": event.collaboration_id, "data": json.dumps(event.data)})

    def _write(self, event: Event) -> None:
        try:
            with self._engine.begin() as conn:
                row_id = conn.execute(insert(EventRow).values(
                    created_at=utcnow(), name=event.name.value,
                    collaboration_id=event.collaboration_id, data=json.dumps(event.data),
                ).returning(EventRow.id)).scalar_one()
                conn.execute(select(func.pg_notify(self._channel, str(row_id))))
                if self._lost.is_set():
                    conn.execute(select(func.pg_notify(self._channel, RESYNC)))
            self._lost.clear()
        except SQLAlchemyError as exc:
            # The change itself is committed; whoever follows it re-reads on the next sync.
            self._lost.set()
            log.warning("event_not_published", event_name=event.name.value,
                        error=type(exc).__name__)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._subscribers.resync_all, "publish failed")

    def prune(self) -> int:
        """Delete event rows past the retention window (and announce a lost publish).

        Returns:
            How many rows were deleted.
        """
        cutoff = utcnow() - timedelta(seconds=self._retention)
        with self._engine.begin() as conn:
            deleted = conn.execute(delete(EventRow).where(EventRow.created_at < cutoff))
            if self._lost.is_set():
                conn.execute(select(func.pg_notify(self._channel, RESYNC)))
        self._lost.clear()
        return int(deleted.rowcount or 0)

    async def _prune_job(self) -> None:
        while True:
            await asyncio.sleep(min(self._retention / 4, _PRUNE_EVERY))
            try:
                await asyncio.to_thread(self.prune)
            except SQLAlchemyError as exc:
                log.warning("event_prune_failed", error=type(exc).__name__)

    # --- reading ------------------------------------------------------------------------
    def subscribe(self, accept: EventFilter) -> AbstractAsyncContextManager[Subscription]:
        """Receive accepted events (published by any replica) until the context exits."""
        return self._subscribers.subscribe(accept)

    async def _listen(self) -> None:
        connected_before = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True,
                        connect_timeout=max(2, int(self._heartbeat))) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    if connected_before:  # whatever was published meanwhile is unknown
                        self._subscribers.resync_all("event bus reconnected")
                    connected_before = True
                    self._listening.set()
                    log.info("event_bus_listening", channel=self._channel)
                    await self._receive(conn)
            except (psycopg.Error, OSError) as exc:  # OSError includes TimeoutError
                log.warning("event_bus_connection_lost", error=str(exc).strip().splitlines()[0]
                            if str(exc).strip() else type(exc).__name__)
            except Exception:  # a bug must not end the listener: log it, listen again
                log.exception("event_bus_listener_failed")
            self._listening.clear()
            await asyncio.sleep(self._reconnect)

    async def _receive(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        """Read notifications in batches until the connection fails."""
        while True:
            payloads = [n.payload async for n in conn.notifies(timeout=self._heartbeat,
                                                                stop_after=1)]
            if not payloads:
                async with asyncio.timeout(self._heartbeat):  # an idle, dead connection
                    await conn.execute("SELECT 1")          # fails (or hangs) here
                continue
            payloads += [n.payload async for n in conn.notifies(timeout=0.0)]
            await self._deliver(conn, payloads)

    async def _deliver(self, conn: psycopg.AsyncConnection[TupleRow],
                       payloads: list[str]) -> None:
        ids: list[int] = []
        for payload in payloads:
            if payload == RESYNC:
                self._subscribers.resync_all("a replica failed to publish")
            elif payload.isdigit():
                ids.append(int(payload))
        for start in range(0, len(ids), _BATCH):
            batch = ids[start:start + _BATCH]
            cursor = await conn.execute(
                "SELECT id, name, collaboration_id, data FROM event WHERE id = ANY(%s)",
                [batch])
            rows = {int(row[0]): row for row in await cursor.fetchall()}
            if len(rows) < len(batch):
                self._subscribers.resync_all("event rows already pruned")
            for row_id in batch:
                row = rows.get(row_id)
                if row is None:
                    continue
                try:
                    event = Event(EventName(row[1]), int(row[2]), json.loads(row[3]))
                except ValueError:  # a newer replica's event name: nobody here subscribes
                    continue
                self._subscribers.dispatch(event)
