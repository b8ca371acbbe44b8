"""I/O-free rules for waiting on a task: when to read its status, what a log event holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from v6flow._sse import Event
from v6flow.errors import DeserializationError
from v6flow.schemas.events import AlgorithmLogEvent, EventPayload, RunUpdateEvent, SyncEvent

#: Seconds between status reads when no event arrives (the safety net under the push).
DEFAULT_POLL_INTERVAL = 5.0


@dataclass(frozen=True)
class LogLines:
    """Live log lines of one run, as pushed by the ``algorithm_log`` event."""

    task_id: int
    run_id: int
    organization_id: int
    lines: tuple[str, ...]


def _payload(event: Event | None) -> EventPayload | None:
    """The typed payload, or None (no event, an unknown name, or data that does not fit)."""
    if event is None:
        return None
    try:
        return event.payload
    except DeserializationError:
        return None


def log_lines(event: Event, task_id: int) -> LogLines | None:
    """The log lines an event carries for ``task_id`` (None for any other event)."""
    payload = _payload(event)
    if not isinstance(payload, AlgorithmLogEvent) or payload.task_id != task_id:
        return None
    return LogLines(task_id=task_id, run_id=payload.run_id,
                    organization_id=payload.organization_id or 0,
                    lines=tuple(payload.all_lines))


class TaskWatch:
    """Decides, event by event, when the status of the watched task must be read.

    The status is read right after (re)subscribing (the ``sync`` event), on every
    ``run_update`` of the task that finishes a run (only that can finish the task: a fan-out
    to 50 organizations read it 150 times), and otherwise every ``poll_interval`` seconds.
    """

    def __init__(self, task_id: int, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        self.task_id = task_id
        self.poll_interval = poll_interval
        self._last_check = -math.inf
        #: A run of the task was pushed as finished: the server sends a run's log lines
        #: before its final ``run_update``, so every line of that run has been seen.
        self.final_update_seen = False

    def _own_update(self, payload: EventPayload | None) -> RunUpdateEvent | None:
        if isinstance(payload, RunUpdateEvent) and payload.task_id == self.task_id:
            return payload
        return None

    def observe(self, event: Event | None) -> None:
        """Note what ``event`` tells about the watched task (see ``final_update_seen``)."""
        update = self._own_update(_payload(event))
        if update is not None and update.status.is_finished:
            self.final_update_seen = True

    def needs_check(self, event: Event | None, now: float) -> bool:
        """Whether to read the task status now (``event`` None: no event, just time)."""
        payload = _payload(event)
        update = self._own_update(payload)
        if isinstance(payload, SyncEvent) or (update is not None and update.status.is_finished):
            return True
        return now - self._last_check >= self.poll_interval

    def checked(self, now: float) -> None:
        """Record that the status was read at ``now``."""
        self._last_check = now
