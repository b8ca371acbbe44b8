"""A tiny Server-Sent-Events reader for tests: a thread that timestamps every event."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Received:
    """One event (``name`` is ``"ping"`` for keep-alive comments)."""

    name: str
    data: Any
    at: float


class EventStream:
    """Reads ``GET /api/events`` in a background thread until closed."""

    def __init__(self, url: str, token: str) -> None:
        """Connect at once; events are queued as they arrive."""
        self.events: queue.Queue[Received] = queue.Queue()
        self.status_code: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, token), daemon=True)
        self._thread.start()

    def _read(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        try:
            with httpx.stream("GET", f"{url}/events", headers=headers,
                              timeout=httpx.Timeout(10, read=30)) as response:
                self.status_code = response.status_code
                name, data = "message", ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        self.events.put(Received("ping", None, time.monotonic()))
                    elif line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        data += line.split(":", 1)[1].strip()
                    elif line == "" and data:
                        self.events.put(Received(name, json.loads(data), time.monotonic()))
                        name, data = "message", ""
        except httpx.HTTPError:
            return

    def next(self, name: str, timeout: float = 5.0) -> Received:
        """The next event called ``name`` (others are skipped); fails after ``timeout``."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event.name == name:
                return event
        raise AssertionError(f"no '{name}' event within {timeout} s")

    def close(self) -> None:
        """Stop reading (the thread ends at the next line, a ping at the latest)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> EventStream:
        """Context-manager use."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close on exit."""
        self.close()
