"""Byte pipes between asyncio streams (the database forwards and the whitelist proxy)."""

from __future__ import annotations

import asyncio

#: Bytes read at a time.
CHUNK = 256 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until EOF, then half-close; a broken side just ends it."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
