"""The retry policies: each retries only its class of error and gives up at its bound."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable

import httpx
import pytest

from v6flow import _retry
from v6flow._retry import (
    FOLLOW_EVENTS,
    FORWARD_TO_SERVER,
    REACH_NODE_PROXY,
    REACH_SERVER,
    REPORT_RUN,
    RESUBSCRIBE_EVENTS,
    WAIT_FOR_SUBTASK,
    RetryPolicy,
)
from v6flow.errors import (
    AuthenticationError,
    BadRequest,
    NotFound,
    PermissionDenied,
    ServerError,
)

POLICIES = {name: value for name, value in vars(_retry).items()
            if isinstance(value, RetryPolicy)}

_REQUEST = httpx.Request("GET", "http://127.0.0.1/x")

#: (policy, error, whether the policy retries it)
CASES = [
    (REACH_SERVER, ServerError("down"), True),
    (REACH_SERVER, NotFound("no such path"), True),
    (REACH_SERVER, AuthenticationError("Api key is not recognized!"), False),
    (FOLLOW_EVENTS, ServerError("stream broke"), True),
    (FOLLOW_EVENTS, httpx.ReadError("reset", request=_REQUEST), True),
    (FOLLOW_EVENTS, AuthenticationError("expired"), True),
    (FOLLOW_EVENTS, ValueError("a bug"), False),
    (REPORT_RUN, ServerError("502"), True),
    (REPORT_RUN, BadRequest("Cannot update an already finished algorithm run!"), False),
    (REPORT_RUN, NotFound("Run not found"), False),
    (REPORT_RUN, AuthenticationError("This run belongs to another node"), False),
    (RESUBSCRIBE_EVENTS, ServerError("refused"), True),
    (RESUBSCRIBE_EVENTS, httpx.RemoteProtocolError("cut", request=_REQUEST), True),
    (RESUBSCRIBE_EVENTS, PermissionDenied("no event rule"), False),
    (REACH_NODE_PROXY, httpx.ConnectError("refused", request=_REQUEST), True),
    (REACH_NODE_PROXY, httpx.ReadTimeout("slow", request=_REQUEST), False),
    (FORWARD_TO_SERVER, httpx.ConnectError("refused", request=_REQUEST), True),
    (FORWARD_TO_SERVER, httpx.ReadTimeout("sent, maybe processed", request=_REQUEST), False),
]


def _instant(policy: RetryPolicy) -> RetryPolicy:
    """The same policy without pauses (what is retried and how often stay the same)."""
    return dataclasses.replace(policy, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0)


def _failing_once(error: Exception) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "ok"

    return calls, attempt


@pytest.mark.parametrize(("policy", "error", "retried"), CASES,
                         ids=[f"{p.name}-{type(e).__name__}" for p, e, _ in CASES])
def test_policies_retry_their_errors_only(policy: RetryPolicy, error: Exception,
                                          retried: bool) -> None:
    """An error of the policy's class is tried again; any other reaches the caller at once."""
    # Prepare
    calls, attempt = _failing_once(error)
    # Execute
    if retried:
        value: str | None = _instant(policy).call(attempt)
    else:
        with pytest.raises(type(error)):
            _instant(policy).call(attempt)
        value = None
    # Assert
    assert len(calls) == (2 if retried else 1)
    assert value == ("ok" if retried else None)


async def test_async_policies_retry_the_same_way() -> None:
    """acall retries like call (the node and the async client use acall)."""
    # Prepare
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ServerError("502")
        return "reported"

    # Execute
    value = await _instant(REPORT_RUN).acall(attempt)
    # Assert
    assert value == "reported" and len(calls) == 3


@pytest.mark.parametrize("policy", [p for p in POLICIES.values() if p.attempts is not None],
                         ids=lambda p: p.name)
def test_policies_give_up_after_their_attempts(policy: RetryPolicy) -> None:
    """An error that never stops is tried exactly ``attempts`` times, then raised."""
    # Prepare
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise httpx.ConnectError("refused", request=_REQUEST)

    # Execute
    with pytest.raises(httpx.ConnectError):
        _instant(policy).call(attempt)
    # Assert
    assert len(calls) == policy.attempts


def test_report_run_gives_up_after_its_timeout() -> None:
    """REPORT_RUN has a time bound: with pauses 0.05, 0.1, 0.2 ... it stops once 0.3 s passed."""
    # Prepare
    timeout = 0.3
    policy = dataclasses.replace(REPORT_RUN, timeout=timeout, wait_initial=0.05,
                                 wait_jitter=0.0)
    pauses = [min(policy.wait_max, policy.wait_initial * policy.wait_exp_base ** n)
              for n in range(10)]
    expected = 1 + next(n for n in range(1, 10) if sum(pauses[:n]) >= timeout)
    calls: list[float] = []
    started = time.monotonic()

    def attempt() -> None:
        calls.append(time.monotonic() - started)
        raise ServerError("502")

    # Execute
    with pytest.raises(ServerError):
        policy.call(attempt)
    # Assert
    assert len(calls) == expected
    assert calls[-1] >= timeout


def test_unbounded_policies_are_the_ones_that_run_until_stopped() -> None:
    """Only the reconnecting policies may retry forever; every other one has a bound."""
    unbounded = {p.name for p in POLICIES.values() if p.attempts is None and p.timeout is None
                 and p is not WAIT_FOR_SUBTASK}
    assert unbounded == {REACH_SERVER.name, FOLLOW_EVENTS.name, RESUBSCRIBE_EVENTS.name}


def test_poll_pauses_grow_and_stop_before_the_timeout() -> None:
    """A subtask poll starts fast, grows by its factor up to its cap, never sleeps past the end."""
    # Prepare
    policy = WAIT_FOR_SUBTASK.bounded(timeout=1.0)
    started = time.monotonic()
    slept: list[float] = []
    # Execute
    for pause in policy.delays():
        time.sleep(pause)
        slept.append(pause)
    elapsed = time.monotonic() - started
    # Assert
    assert slept[0] == WAIT_FOR_SUBTASK.wait_initial
    assert all(b == min(a * policy.wait_exp_base, policy.wait_max)
               for a, b in itertools.pairwise(slept))
    assert elapsed <= 1.0 + 0.05
    next_pause = min(slept[-1] * policy.wait_exp_base, policy.wait_max)
    assert sum(slept) + next_pause > 1.0
