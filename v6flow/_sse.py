"""Server-Sent Events: the one reader of ``GET /events``, for the client and the node.

An I/O-free parser (:class:`SSEParser`: text in, events out, lines split on CR, LF or CRLF
only, as the SSE spec says) and two thin adapters over an httpx streaming response
(:func:`open_stream`, :func:`aopen_stream`). Comment lines (the server's ``: ping``
keep-alive) complete no event; the readers report every line that completes none as
``None``, so a blocking reader can keep time between events without a thread.

Why not httpx-sse: it hides comment lines, and the blocking client needs the keep-alives to
notice a deadline while no event arrives.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import httpx

from v6flow._http_errors import raise_for_response, transport_errors
from v6flow.schemas.events import EventPayload, parse_event

_NEWLINE = re.compile(r"\r\n|\r|\n")
_ACCEPT = {"Accept": "text/event-stream", "Cache-Control": "no-store"}


@dataclass(frozen=True)
class Event:
    """One server event: its name and its decoded JSON data (text when not JSON)."""

    name: str
    data: Any = field(default_factory=dict)

    @cached_property
    def payload(self) -> EventPayload | None:
        """The typed payload (:mod:`v6flow.schemas.events`); None for an unknown name.

        Raises:
            DeserializationError: a known event whose data does not fit its model.
        """
        return parse_event(self.name, self.data)


class SSEParser:
    """Feed it lines (:meth:`feed`) or raw text (:meth:`feed_text`); it returns events.

    Several ``data:`` lines of one event are joined with newlines; ``id:``, ``retry:`` and
    unknown fields are ignored (the server sends none of them).
    """

    def __init__(self) -> None:
        self._name = "message"
        self._data: list[str] = []
        self._pending = ""

    def feed(self, line: str) -> Event | None:
        """Consume one line (without its line end); return an event when the line ends one."""
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

    def feed_text(self, text: str) -> list[Event | None]:
        """Consume a chunk of the stream; one entry per completed line (None: no event)."""
        text = self._pending + text
        held = ""
        if text.endswith("\r"):  # maybe the first half of a CRLF split across chunks
            text, held = text[:-1], "\r"
        *lines, rest = _NEWLINE.split(text)
        self._pending = rest + held
        return [self.feed(line) for line in lines]

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


@contextmanager
def open_stream(http: httpx.Client, url: str, *, timeout: httpx.Timeout,
                headers: Mapping[str, str] | None = None) -> Iterator[Iterator[Event | None]]:
    """Subscribe (blocking); yields an iterator of events, None for each line without one.

    Raises:
        ClientError: the subscription was refused (mapped status), or the connection failed
            or broke (``ServerError``), also while iterating.
    """
    with transport_errors("GET", url), http.stream(
            "GET", url, timeout=timeout, headers={**_ACCEPT, **(headers or {})}) as response:
        if response.status_code >= 400:
            response.read()
            raise_for_response(response)
        parser = SSEParser()
        yield (event for chunk in response.iter_text() for event in parser.feed_text(chunk))


@asynccontextmanager
async def aopen_stream(http: httpx.AsyncClient, url: str, *, timeout: httpx.Timeout,
                       headers: Mapping[str, str] | None = None
                       ) -> AsyncIterator[AsyncIterator[Event | None]]:
    """Async twin of :func:`open_stream`."""
    with transport_errors("GET", url):
        async with http.stream("GET", url, timeout=timeout,
                               headers={**_ACCEPT, **(headers or {})}) as response:
            if response.status_code >= 400:
                await response.aread()
                raise_for_response(response)
            yield _aevents(response)


async def _aevents(response: httpx.Response) -> AsyncIterator[Event | None]:
    parser = SSEParser()
    async for chunk in response.aiter_text():
        for event in parser.feed_text(chunk):
            yield event

