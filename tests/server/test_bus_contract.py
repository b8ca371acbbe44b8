"""One contract for every EventBus: the same tests against the in-process and PostgreSQL buses.

:class:`BusContract` holds the tests; each implementation's subclass says how to start a bus
and a second replica of it (the in-process bus has one replica: itself). The PostgreSQL
bus runs on a fresh database of the local cluster, migrated by the server's own migrations;
its own class at the end covers what only it can suffer (a lost connection, pruned rows).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, insert, select, text

from v6flow.wire import utcnow
from v6flow_server.db.migrate import upgrade_to_head
from v6flow_server.db.models import EventRow
from v6flow_server.db.session import make_engine
from v6flow_server.events import SYNC, Event, EventBus, EventName, InProcessEventBus, Subscription
from v6flow_server.events_pg import CHANNEL, PostgresEventBus

pytestmark = pytest.mark.timeout(120)


def event(number: int, collaboration_id: int = 1, **data: object) -> Event:
    """A ``new_task`` event numbered by its task id."""
    return Event(EventName.NEW_TASK, collaboration_id,
                 {"id": number, "collaboration_id": collaboration_id, **data})


def publish_from_thread(bus: EventBus, events: list[Event]) -> None:
    """Publish as a route does: from a worker thread, after its commit."""
    def publish_all() -> None:
        for item in events:
            bus.publish(item)

    thread = threading.Thread(target=publish_all)
    thread.start()
    thread.join()


async def receive(subscription: Subscription, count: int, timeout: float = 10.0
                  ) -> list[Event]:
    """The next ``count`` events (fails when they do not come within ``timeout``)."""
    got: list[Event] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            item = await subscription.get(timeout=timeout)
            if item is not None:
                got.append(item)
    return got


class BusContract:
    """What every implementation of :class:`v6flow_server.events.EventBus` does."""

    def new_bus(self, queue_size: int) -> EventBus:
        """A bus, not started (each implementation's class says how)."""
        raise NotImplementedError

    def peer(self, bus: EventBus, queue_size: int) -> EventBus | None:
        """A second replica's bus sharing ``bus``'s medium; None: ``bus`` is the only one."""
        raise NotImplementedError

    @asynccontextmanager
    async def replicas(self, queue_size: int = 1000) -> AsyncIterator[tuple[EventBus, EventBus]]:
        """Two started replicas' buses (the same one twice when there is only one)."""
        async with AsyncExitStack() as stack:
            first = self.new_bus(queue_size)
            await first.start()
            stack.push_async_callback(first.stop)
            second = self.peer(first, queue_size)
            if second is None:
                second = first
            else:
                await second.start()
                stack.push_async_callback(second.stop)
            yield first, second

    async def test_events_reach_only_the_subscribers_that_accept_them(self) -> None:
        """publish() from a worker thread reaches exactly the accepting subscribers."""
        async with self.replicas() as (bus, _), \
                bus.subscribe(lambda e: e.collaboration_id == 1) as mine, \
                bus.subscribe(lambda e: e.collaboration_id == 2) as other:
            publish_from_thread(bus, [event(7, 1)])
            assert await receive(mine, 1) == [event(7, 1)]
            assert await other.get(timeout=0.5) is None

    async def test_an_event_reaches_every_replica(self) -> None:
        """An event published on one replica reaches the subscribers of the other."""
        async with self.replicas() as (first, second), \
                first.subscribe(lambda _e: True) as here, \
                second.subscribe(lambda _e: True) as there:
            publish_from_thread(first, [event(1)])
            assert await receive(here, 1) == [event(1)]
            assert await receive(there, 1) == [event(1)]

    async def test_events_keep_their_publish_order(self) -> None:
        """Events one thread publishes arrive in that order."""
        sent = [event(n) for n in range(50)]
        async with self.replicas() as (bus, _), bus.subscribe(lambda _e: True) as sub:
            publish_from_thread(bus, sent)
            assert await receive(sub, len(sent)) == sent

    async def test_publishing_on_the_event_loop_works_too(self) -> None:
        """publish() called on the loop's own thread is delivered."""
        async with self.replicas() as (bus, _), bus.subscribe(lambda _e: True) as sub:
            bus.publish(event(3))
            assert await receive(sub, 1) == [event(3)]

    async def test_get_answers_none_when_nothing_comes(self) -> None:
        """A subscription without events answers None after its timeout."""
        async with self.replicas() as (bus, _), bus.subscribe(lambda _e: True) as sub:
            assert await sub.get(timeout=0.2) is None

    async def test_a_large_event_arrives_whole(self) -> None:
        """Log lines far beyond NOTIFY's 8000-byte payload limit arrive intact."""
        lines = [f"line {n} " + "x" * 1000 for n in range(100)]
        big = Event(EventName.ALGORITHM_LOG, 1, {"run_id": 1, "task_id": 2, "lines": lines,
                                                 "collaboration_id": 1})
        async with self.replicas() as (first, second), \
                second.subscribe(lambda _e: True) as sub:
            publish_from_thread(first, [big])
            assert await receive(sub, 1) == [big]
            assert len(big.to_sse()) > 8000 * 10

    async def test_a_full_queue_turns_into_sync_and_the_newest_events(self) -> None:
        """A subscriber that falls behind gets sync, then only events newer than the sync."""
        queue_size = 3
        sent = [event(n) for n in range(10)]
        marker = event(99, collaboration_id=2)
        async with self.replicas(queue_size) as (bus, _), \
                bus.subscribe(lambda e: e.collaboration_id == 1) as slow, \
                bus.subscribe(lambda e: e.collaboration_id == 2) as probe:
            # Execute: ten events while the slow subscriber reads nothing, then a marker
            # that shows every one of them was dispatched.
            publish_from_thread(bus, [*sent, marker])
            assert await receive(probe, 1) == [marker]
            got = await receive(slow, 1)
            while (item := await slow.get(timeout=0.3)) is not None:
                got.append(item)
        # Assert: sync first, then an unbroken tail of what was sent, ending at the newest.
        assert got[0] == SYNC, got
        tail = got[1:]
        assert 1 <= len(tail) < queue_size
        assert tail == sent[len(sent) - len(tail):]

    async def test_a_departed_subscriber_gets_nothing_and_costs_nothing(self) -> None:
        """After its context exits, a subscription no longer receives events."""
        async with self.replicas() as (bus, _):
            async with bus.subscribe(lambda _e: True) as gone:
                pass
            async with bus.subscribe(lambda _e: True) as sub:
                publish_from_thread(bus, [event(5)])
                assert await receive(sub, 1) == [event(5)]
            assert await gone.get(timeout=0.2) is None


class TestInProcessBus(BusContract):
    """The contract on the in-process bus (one server process)."""

    def new_bus(self, queue_size: int) -> EventBus:
        """An in-process bus."""
        return InProcessEventBus(queue_size=queue_size)

    def peer(self, bus: EventBus, queue_size: int) -> EventBus | None:
        """One process is one replica."""
        return None


@pytest.fixture(scope="module")
def pg_engine(postgres_databases: Callable[[], str]) -> Iterator[Engine]:
    """A fresh PostgreSQL database with the server's schema."""
    engine = make_engine(postgres_databases())
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


class TestPostgresBus(BusContract):
    """The contract on the PostgreSQL LISTEN/NOTIFY bus (replicas on one database)."""

    @pytest.fixture(autouse=True)
    def _engine(self, pg_engine: Engine) -> None:
        self.engine = pg_engine

    def new_bus(self, queue_size: int) -> EventBus:
        """A PostgreSQL bus on the test database."""
        return PostgresEventBus(engine=self.engine, queue_size=queue_size,
                                heartbeat_seconds=1.0, reconnect_seconds=0.2)

    def peer(self, bus: EventBus, queue_size: int) -> EventBus | None:
        """Another bus on the same database: another replica."""
        return self.new_bus(queue_size)


class TestPostgresBusRecovery:
    """What only the PostgreSQL bus can suffer, and how its subscribers learn of it."""

    @staticmethod
    def _bus(engine: Engine, retention_seconds: float = 300.0) -> PostgresEventBus:
        return PostgresEventBus(engine=engine, heartbeat_seconds=1.0, reconnect_seconds=0.2,
                                retention_seconds=retention_seconds)

    async def test_a_lost_listener_connection_makes_subscribers_resync(
            self, pg_engine: Engine) -> None:
        """The listener's backend is killed: subscribers get sync, and events flow again."""
        bus = self._bus(pg_engine)
        await bus.start()
        try:
            async with bus.subscribe(lambda _e: True) as sub:
                # Execute: terminate the backend that LISTENs.
                with pg_engine.begin() as conn:
                    killed = conn.execute(text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )).scalars().all()
                assert killed and all(killed)
                # Assert: sync, then an event published after the reconnect arrives.
                assert await receive(sub, 1) == [SYNC]
                publish_from_thread(bus, [event(11)])
                assert await receive(sub, 1) == [event(11)]
        finally:
            await bus.stop()

    async def test_a_notified_event_already_pruned_makes_subscribers_resync(
            self, pg_engine: Engine) -> None:
        """A notification whose row is gone (listener far behind) turns into sync."""
        bus = self._bus(pg_engine)
        await bus.start()
        try:
            async with bus.subscribe(lambda _e: True) as sub:
                with pg_engine.begin() as conn:
                    missing = (conn.execute(select(func.max(EventRow.id))).scalar() or 0) + 10**6
                    conn.execute(select(func.pg_notify(CHANNEL, str(missing))))
                assert await receive(sub, 1) == [SYNC]
        finally:
            await bus.stop()

    def test_prune_keeps_the_retention_window(self, pg_engine: Engine) -> None:
        """prune() deletes exactly the rows older than the retention window."""
        retention = 60.0
        bus = self._bus(pg_engine, retention_seconds=retention)
        now = utcnow()
        ages = [0, 30, 59, 61, 120, 3600]
        with pg_engine.begin() as conn:
            conn.execute(text("DELETE FROM event"))
            for age in ages:
                conn.execute(insert(EventRow).values(
                    created_at=now - timedelta(seconds=age), name="new_task",
                    collaboration_id=1, data="{}"))
        deleted = bus.prune()
        with pg_engine.begin() as conn:
            left = conn.execute(select(func.count()).select_from(EventRow)).scalar_one()
        assert deleted == sum(1 for a in ages if a > retention)
        assert left == len(ages) - deleted
