"""Rate limits of the endpoints that check credentials, per client address and per username.

:class:`RateLimiter` is the seam the routes call; :class:`LimitsRateLimiter` implements it
with the ``limits`` library (sliding-window counters). Its storage is in this process today;
several server replicas will need a shared ``limits`` storage (e.g. Redis) passed in here,
and nothing else changes.

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
from limits.strategies import SlidingWindowCounterRateLimiter

from server.errors import TooManyRequestsError

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
