"""Server-Sent-Events: an incremental, I/O-free parser of the ``GET /events`` stream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Events the server pushes (TEAM.md "Push channel").
SYNC = "sync"
RUN_UPDATE = "run_update"
ALGORITHM_LOG = "algorithm_log"
NEW_TASK = "new_task"
KILL_CONTAINERS = "kill_containers"


@dataclass(frozen=True)
class Event:
    """One server event: its name and its decoded JSON data."""

    name: str
    data: Any = field(default_factory=dict)


class SSEParser:
    """Feed it lines (without the newline); it returns the events they complete.

    Comment lines (``: ping``) are keep-alives: they complete no event.
    """

    def __init__(self) -> None:
        self._name = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """Consume one line; return an event when the line ends one."""
        line = line.rstrip("\r")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            self._name = value
        elif key == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._name = "message"
            return None
        raw = "\n".join(self._data)
        name = self._name
        self._name, self._data = "message", []
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw
        return Event(name=name, data=data)


def concerns_task(event: Event, task_id: int) -> bool:
    """Whether an event is about ``task_id`` (run updates and log lines carry ``task_id``)."""
    return isinstance(event.data, dict) and event.data.get("task_id") == task_id
