"""Blob payloads as streams: incremental base64, and file/iterator helpers around it.

A blob holds what the inline ``input``/``result`` field would hold, minus the outer base64 of
an encrypted message (vantage6 4.x, CONTRACT §5). In an unencrypted collaboration that is the
base64 text of the payload, so a node uploads ``base64(output file)`` and downloads
``base64(input)``, and the node proxy encodes a container's upload and decodes its download.
Encrypted blobs (``base64(EK)$base64(IV)$`` then raw ciphertext) are recognised and refused
here; the encryption layer transforms them with a codec of the same shape (:class:`Codec`).

Nothing here holds more than about one chunk (:data:`CHUNK_BYTES`) of a payload at a time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import anyio

from v6flow.errors import DeserializationError

#: Bytes read or written at a time (a multiple of 3, so base64 chunks need no padding).
CHUNK_BYTES = 3 * 256 * 1024
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def encoded_size(size: int) -> int:
    """Length of the base64 text of ``size`` bytes (what the threshold is compared with)."""
    return 4 * ((size + 2) // 3)


class Codec(Protocol):
    """A transform of one payload, fed chunk by chunk."""

    def feed(self, data: bytes) -> bytes:
        """Transform the next part; may hold back a few bytes until more arrive."""

    def flush(self) -> bytes:
        """The rest, once the payload has ended.

        Raises:
            DeserializationError: the payload ended in the middle of a unit.
        """


class Base64Encoder:
    """Standard base64 with padding, of a payload given in any pieces."""

    def __init__(self) -> None:
        """Start with nothing held back."""
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        """Encode what makes whole 3-byte groups; keep the remainder."""
        data = self._rest + data
        whole = len(data) - len(data) % 3
        self._rest = data[whole:]
        return base64.b64encode(data[:whole])

    def flush(self) -> bytes:
        """Encode the remainder (with padding)."""
        rest, self._rest = self._rest, b""
        return base64.b64encode(rest)


class Base64Decoder:
    """Decodes standard base64 given in any pieces; refuses an encrypted blob by name."""

    def __init__(self) -> None:
        """Start with nothing held back."""
        self._rest = b""
        self._started = False

    def feed(self, data: bytes) -> bytes:
        """Decode what makes whole 4-character groups; keep the remainder.

        Raises:
            DeserializationError: not base64 (an encrypted blob says so).
        """
        if not self._started and data:
            self._started = True
            head = data[:1100]
            if b"$" in head:
                raise DeserializationError(
                    "the blob is encrypted (base64(key)$base64(iv)$ciphertext); this side "
                    "has no key to decrypt it")
        data = self._rest + data
        whole = len(data) - len(data) % 4
        self._rest = data[whole:]
        return _b64decode(data[:whole])

    def flush(self) -> bytes:
        """Decode the remainder.

        Raises:
            DeserializationError: the text ended inside a 4-character group.
        """
        rest, self._rest = self._rest, b""
        if rest:
            raise DeserializationError(f"base64 blob ends with {len(rest)} stray characters")
        return b""


def _b64decode(text: bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        bad = next((chr(c) for c in text if c not in _B64_ALPHABET), None)
        where = f" (found {bad!r})" if bad is not None else ""
        raise DeserializationError(f"blob is not base64 text{where}: {exc}") from None


def transform(chunks: Iterable[bytes], codec: Codec) -> Iterator[bytes]:
    """``chunks`` through ``codec`` (empty pieces are skipped)."""
    for chunk in chunks:
        if out := codec.feed(chunk):
            yield out
    if out := codec.flush():
        yield out


async def atransform(chunks: AsyncIterable[bytes], codec: Codec) -> AsyncIterator[bytes]:
    """:func:`transform` of an async stream."""
    async for chunk in chunks:
        if out := codec.feed(chunk):
            yield out
    if out := codec.flush():
        yield out


async def read_file(path: Path, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The bytes of ``path`` in chunks, read in a worker thread (a missing file is empty)."""
    try:
        handle = await anyio.to_thread.run_sync(path.open, "rb")
    except FileNotFoundError:
        return
    try:
        while data := await anyio.to_thread.run_sync(handle.read, chunk_bytes):
            yield data
    finally:
        handle.close()


async def write_file(path: Path, chunks: AsyncIterable[bytes]) -> int:
    """Write ``chunks`` to ``path`` (replacing it) in a worker thread; the bytes written."""
    handle = await anyio.to_thread.run_sync(path.open, "wb")
    written = 0
    try:
        async for chunk in chunks:
            await anyio.to_thread.run_sync(handle.write, chunk)
            written += len(chunk)
    finally:
        handle.close()
    return written


def encode_bytes(payload: bytes) -> Callable[[], Iterator[bytes]]:
    """A re-startable chunked base64 body of ``payload`` (for a client's upload)."""

    def chunks() -> Iterator[bytes]:
        view = memoryview(payload)
        return transform((bytes(view[i:i + CHUNK_BYTES])
                          for i in range(0, len(payload), CHUNK_BYTES)), Base64Encoder())

    return chunks
