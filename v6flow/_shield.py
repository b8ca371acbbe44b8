"""Finishing clean-up work (kill requests) while the surrounding task is being cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

_T = TypeVar("_T")


async def uncancellable(awaitable: Awaitable[_T]) -> _T:
    """Await ``awaitable`` to its end even while this task is cancelled, then re-raise.

    ``anyio.CancelScope(shield=True)`` (kept around the calls) stops anyio cancel scopes
    only; a native ``Task.cancel()`` still interrupts it. A deployed flow run gets exactly
    that: on the worker's SIGTERM, ``asyncio.run`` cancels every task, then the fan-out
    cancels its organizations' tasks a second time, which cut their kill requests short.
    """
    future = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.done():  # the awaitable itself was cancelled
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


__all__ = ["uncancellable"]
