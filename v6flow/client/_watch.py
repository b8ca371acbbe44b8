"""I/O-free rules for waiting on a task: when to read its status, what a log event holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from v6flow.client._sse import ALGORITHM_LOG, RUN_UPDATE, SYNC, Event, concerns_task
from v6flow.status import RunStatus

#: Seconds between status reads when no event arrives (the safety net under the push).
DEFAULT_POLL_INTERVAL = 5.0


@dataclass(frozen=True)
class LogLines:
    """Live log lines of one run, as pushed by the ``algorithm_log`` event."""

    task_id: int
    run_id: int
    organization_id: int
    lines: tuple[str, ...]


def log_lines(event: Event, task_id: int) -> LogLines | None:
    """The log lines an event carries for ``task_id`` (None for any other event)."""
    if event.name != ALGORITHM_LOG or not concerns_task(event, task_id):
        return None
    data = event.data
    lines = data.get("lines")
    if lines is None:  # v4 nodes send a single "log" string
        lines = str(data.get("log") or "").splitlines()
    return LogLines(task_id=task_id, run_id=int(data.get("run_id") or 0),
                    organization_id=int(data.get("organization_id") or 0),
                    lines=tuple(str(line) for line in lines))


def _finished(status: object) -> bool:
    try:
        return RunStatus(str(status)).is_finished
    except ValueError:
        return False


class TaskWatch:
    """Decides, event by event, when the status of the watched task must be read.

    The status is read right after (re)subscribing (the ``sync`` event), on every
    ``run_update`` of the task, and otherwise every ``poll_interval`` seconds.
    """

    def __init__(self, task_id: int, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        self.task_id = task_id
        self.poll_interval = poll_interval
        self._last_check = -math.inf
        #: A run of the task was pushed as finished: the server sends a run's log lines
        #: before its final ``run_update``, so every line of that run has been seen.
        self.final_update_seen = False

    def observe(self, event: Event | None) -> None:
        """Note what ``event`` tells about the watched task (see ``final_update_seen``)."""
        if (event is not None and event.name == RUN_UPDATE
                and concerns_task(event, self.task_id)
                and _finished(event.data.get("status"))):
            self.final_update_seen = True

    def needs_check(self, event: Event | None, now: float) -> bool:
        """Whether to read the task status now (``event`` None: no event, just time)."""
        if event is not None and (
            event.name == SYNC or (event.name == RUN_UPDATE and concerns_task(event, self.task_id))
        ):
            return True
        return now - self._last_check >= self.poll_interval

    def checked(self, now: float) -> None:
        """Record that the status was read at ``now``."""
        self._last_check = now
