"""Rate limits of the endpoints that check credentials, per client address and per username.

:class:`RateLimiter` is the seam the routes call; :class:`LimitsRateLimiter` implements it
with the ``limits`` library (sliding-window counters). Where the counters live:

- SQLite (one server process): in the process (``limits``' ``MemoryStorage``);
- PostgreSQL (one or several replicas): in the database (:class:`DatabaseStorage`, table
  ``rate_limit_counter``), so a limit holds for the whole deployment, whichever replica the
  load balancer picks; each counted request costs one upsert.

Each endpoint group has its own budget per address, so containers that hammer
``/token/user`` through their node's proxy cannot starve the node's own ``/token/node``
and ``/token/refresh``. A username has one budget across all groups.
"""

from __future__ import annotations

import math
import time
from enum import StrEnum
from typing import Protocol

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage
from limits.storage.base import SlidingWindowCounterSupport, TimestampedSlidingWindow
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import Engine, case, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError

from v6flow_server.db.models import RateLimitCounter
from v6flow_server.errors import TooManyRequestsError

TOO_MANY = "Too many requests; try again in {seconds} seconds"
#: Usernames and e-mail addresses are keyed by at most this many characters.
_MAX_KEY = 255


class LimitGroup(StrEnum):
    """Endpoints that share a budget per client address."""

    USER_LOGIN = "token/user"
    NODE_LOGIN = "token/node"
    REFRESH = "token/refresh"
    RECOVER = "recover"
    PASSWORD = "password"  # noqa: S105 - a path, not a secret


class RateLimiter(Protocol):
    """Counts requests and refuses one when a limit is used up."""

    def check_address(self, group: LimitGroup, address: str) -> None:
        """Count one request of ``address`` to the endpoints of ``group``.

        Raises:
            TooManyRequestsError: the limit is used up; ``retry_after`` says for how long.
        """

    def check_username(self, username: str) -> None:
        """Count one request naming ``username`` (or an e-mail address), on any endpoint.

        Raises:
            TooManyRequestsError: the limit is used up.
        """


class LimitsRateLimiter:
    """:class:`RateLimiter` on the ``limits`` library."""

    def __init__(self, *, per_address: str, per_username: str,
                 storage: Storage | None = None) -> None:
        """Parse the limits (``'10/minute'``, several joined by ``;``).

        Args:
            per_address: limits of one client address on one endpoint group.
            per_username: limits of one username or e-mail address over all groups.
            storage: where counters live; in this process unless given.
        """
        self._per_address: list[RateLimitItem] = parse_many(per_address)
        self._per_username: list[RateLimitItem] = parse_many(per_username)
        self._limiter = SlidingWindowCounterRateLimiter(storage or MemoryStorage())

    def check_address(self, group: LimitGroup, address: str) -> None:
        """Count the request against the limits of its address on ``group``.

        Raises:
            TooManyRequestsError: a limit is used up.
        """
        self._hit(self._per_address, "address", group.value, address)

    def check_username(self, username: str) -> None:
        """Count the request against the limits of the (case-folded) name.

        Raises:
            TooManyRequestsError: a limit is used up.
        """
        self._hit(self._per_username, "username", username.strip().lower()[:_MAX_KEY])

    def _hit(self, items: list[RateLimitItem], *key: str) -> None:
        for item in items:
            if not self._limiter.hit(item, *key):
                reset = self._limiter.get_window_stats(item, *key).reset_time
                seconds = max(1, math.ceil(reset - time.time()))
                raise TooManyRequestsError(TOO_MANY.format(seconds=seconds),
                                           retry_after=seconds)


class DatabaseStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """``limits`` storage in the server's PostgreSQL database: counters all replicas share.

    A counter is one row (key, count, expiry as a UNIX time); incrementing is one
    ``INSERT … ON CONFLICT DO UPDATE`` that also restarts an expired counter, so concurrent
    replicas never lose a hit. Expired rows are deleted at most once a minute.
    """

    STORAGE_SCHEME = None  # built from an engine, not from a URI
    PRUNE_EVERY = 60.0

    def __init__(self, engine: Engine) -> None:
        """Count in ``engine``'s database (PostgreSQL)."""
        super().__init__()
        self._engine = engine
        self._pruned_at = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """What a failing database raises."""
        return SQLAlchemyError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the counter (a fresh one expires in ``expiry`` seconds)."""
        now = time.time()
        row = RateLimitCounter
        expired = row.expires_at <= now
        stmt = pg_insert(row).values(key=key, count=amount, expires_at=now + expiry)
        stmt = stmt.on_conflict_do_update(index_elements=[row.key], set_={
            "count": case((expired, amount), else_=row.count + amount),
            "expires_at": case((expired, now + expiry), else_=row.expires_at),
        })
        with self._engine.begin() as conn:
            count = conn.execute(stmt.returning(row.count)).scalar_one()
            if now - self._pruned_at > self.PRUNE_EVERY:
                self._pruned_at = now
                conn.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now))
        return int(count)

    def decr(self, key: str, amount: int = 1) -> int:
        """Take ``amount`` back (never below 0)."""
        with self._engine.begin() as conn:
            count = conn.execute(
                update(RateLimitCounter)
                .where(RateLimitCounter.key == key, RateLimitCounter.expires_at > time.time())
                .values(count=func.greatest(RateLimitCounter.count - amount, 0))
                .returning(RateLimitCounter.count)).scalar()
        return int(count or 0)

    def get(self, key: str) -> int:
        """The live counter (0 when missing or expired)."""
        with self._engine.connect() as conn:
            count = conn.execute(select(RateLimitCounter.count).where(
                RateLimitCounter.key == key, RateLimitCounter.expires_at > time.time())).scalar()
        return int(count or 0)

    def get_expiry(self, key: str) -> float:
        """When the counter expires (now when there is none)."""
        now = time.time()
        with self._engine.connect() as conn:
            expiry = conn.execute(select(RateLimitCounter.expires_at).where(
                RateLimitCounter.key == key, RateLimitCounter.expires_at > now)).scalar()
        return float(expiry if expiry is not None else now)

    def check(self) -> bool:
        """Whether the database answers."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        """Delete every counter."""
        with self._engine.begin() as conn:
            return int(conn.execute(delete(RateLimitCounter)).rowcount or 0)

    def clear(self, key: str) -> None:
        """Delete one counter."""
        with self._engine.begin() as conn:
            conn.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int,
                                     amount: int = 1) -> bool:
        """Count a hit unless the weighted count of both windows reaches ``limit``."""
        if amount > limit:
            return False
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous, previous_ttl, current, _ = self._window(previous_key, current_key, expiry,
                                                          now)
        if math.floor(previous * previous_ttl / expiry + current) + amount > limit:
            return False
        current = self.incr(current_key, 2 * expiry, amount=amount)
        if math.floor(previous * previous_ttl / expiry + current) > limit:
            self.decr(current_key, amount)  # another replica's hit won the race
            return False
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """Counters and remaining lifetimes of the previous and the current window."""
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        return self._window(previous_key, current_key, expiry, now)

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Delete both windows' counters."""
        for window_key in self.sliding_window_keys(key, expiry, time.time()):
            self.clear(window_key)

    def _window(self, previous_key: str, current_key: str, expiry: int,
                now: float) -> tuple[int, float, int, float]:
        previous = self.get(previous_key)
        previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, self.get(current_key), current_ttl
