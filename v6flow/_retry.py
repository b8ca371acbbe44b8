"""Retry and poll policies: one named policy per class of call, each with its bounds here.

Retrying after an error runs on stamina (:meth:`RetryPolicy.call`, :meth:`RetryPolicy.acall`):
exponential backoff, optionally jittered, bounded by ``attempts`` and/or ``timeout``, and
only for the errors ``on`` accepts; anything else, and the last error once the bound is
reached, goes straight to the caller. stamina logs every scheduled retry
(``stamina.retry_scheduled``, ``callable`` = ``v6flow._retry.<policy name>``, never the call's
arguments). A poll (:meth:`RetryPolicy.delays`) walks the same schedule without an error:
waiting for a subtask is no failure, so it is not logged.

    policy              used by                           retries on              bound
    REACH_SERVER        node start (login, own record)    ClientError but 401     none (until stop)
    FOLLOW_EVENTS       node event stream (re)connect     ClientError, httpx      none (until stop)
    REPORT_RUN          node PATCH /run (status, result)  ServerError (5xx/down)  5 min
    RESUBSCRIBE_EVENTS  client event stream (re)connect   ServerError, httpx      none (until close)
    REACH_NODE_PROXY    algorithm container → node proxy  httpx.ConnectError      20 tries, 10 s
    FORWARD_TO_SERVER   node proxy → server               httpx.ConnectError      3 tries
    WAIT_FOR_SUBTASK    AlgorithmClient.wait_for_task     (a poll)                caller's timeout

Change a bound here, not at the call site; a call site that needs another bound (a caller's
timeout) derives it with :meth:`RetryPolicy.bounded`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx
import stamina

from v6flow.errors import AuthenticationError, ClientError, ServerError

T = TypeVar("T")

OnError = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
"""What a policy retries: exception classes, or a predicate of the raised exception."""


@dataclass(frozen=True)
class RetryPolicy:
    """How one class of call is retried (or polled), and for how long at most.

    The pause before retry *n* (1-based) is ``min(wait_max, wait_initial *
    wait_exp_base ** (n - 1))`` plus a random ``0..wait_jitter``.
    """

    name: str
    on: OnError = ()
    attempts: int | None = None
    timeout: float | None = None
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_exp_base: float = 2.0
    wait_jitter: float = 0.0

    def bounded(self, *, attempts: int | None = None, timeout: float | None = None,
                wait_initial: float | None = None) -> RetryPolicy:
        """This policy with a caller's own bound (or first pause) in place of the default."""
        changes: dict[str, float | int] = {}
        if attempts is not None:
            changes["attempts"] = attempts
        if timeout is not None:
            changes["timeout"] = timeout
        if wait_initial is not None:
            changes["wait_initial"] = wait_initial
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def _retrying(self) -> Callable[[Callable[[], T]], Callable[[], T]]:
        return stamina.retry(on=self.on, attempts=self.attempts, timeout=self.timeout,
                             wait_initial=self.wait_initial, wait_max=self.wait_max,
                             wait_jitter=self.wait_jitter, wait_exp_base=self.wait_exp_base)

    def _named(self, attempt: Callable[[], T]) -> Callable[[], T]:
        attempt.__module__ = __name__
        attempt.__qualname__ = attempt.__name__ = self.name
        return attempt

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried under this policy; the last error when the bound is reached."""

        def attempt() -> T:
            return fn()

        return self._retrying()(self._named(attempt))()

    async def acall(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()``, retried under this policy (cancellation is never retried)."""

        async def attempt() -> T:
            return await fn()

        retried: Callable[[], Awaitable[T]] = self._retrying()(self._named(attempt))
        return await retried()

    def delays(self) -> Iterator[float]:
        """The pauses of a poll: the schedule without jitter, until a bound would be passed.

        Stops after ``attempts - 1`` pauses, or before a pause that would end after
        ``timeout`` seconds (counted from the first ``next()``).
        """
        started = time.monotonic()
        pauses, delay = 0, min(self.wait_initial, self.wait_max)
        while self.attempts is None or pauses < self.attempts - 1:
            if self.timeout is not None and time.monotonic() - started + delay > self.timeout:
                return
            yield delay
            pauses += 1
            delay = min(self.wait_max, delay * self.wait_exp_base)


def _not_refused(exc: Exception) -> bool:
    """Anything the server may answer while starting, but not a refused api_key."""
    return isinstance(exc, ClientError) and not isinstance(exc, AuthenticationError)


REACH_SERVER = RetryPolicy(
    "reach_server", on=_not_refused, wait_initial=0.5, wait_max=10.0, wait_jitter=0.5)
"""A node starting: log in and read its own record until the server answers."""

FOLLOW_EVENTS = RetryPolicy(
    "follow_events", on=(ClientError, httpx.HTTPError), wait_initial=0.5, wait_max=10.0,
    wait_jitter=0.5)
"""A node (re)connecting its event stream; a stream that was up starts again at 0.5 s."""

REPORT_RUN = RetryPolicy(
    "report_run", on=ServerError, timeout=300.0, wait_initial=0.5, wait_max=15.0,
    wait_jitter=0.5)
"""A node reporting a run (``PATCH /run``): a result must survive a server restart."""

RESUBSCRIBE_EVENTS = RetryPolicy(
    "resubscribe_events", on=(ServerError, httpx.TransportError), wait_initial=0.5,
    wait_max=5.0, wait_jitter=0.25)
"""A client resubscribing to ``GET /events`` after the stream broke."""

REACH_NODE_PROXY = RetryPolicy(
    "reach_node_proxy", on=httpx.ConnectError, attempts=20, timeout=10.0, wait_initial=0.1,
    wait_max=1.0)
"""An algorithm container's request while the node proxy is not listening yet."""

FORWARD_TO_SERVER = RetryPolicy(
    "forward_to_server", on=httpx.ConnectError, attempts=3, wait_initial=0.2, wait_max=0.4)
"""The node proxy forwarding a container's request: nothing reached the server, so even a
POST is safe to send again."""

WAIT_FOR_SUBTASK = RetryPolicy(
    "wait_for_subtask", wait_initial=0.1, wait_max=2.0, wait_exp_base=1.5)
"""A central function polling its subtask's status (first after 0.1 s, x1.5, at most 2 s)."""
