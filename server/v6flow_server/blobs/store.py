"""The ``BlobStore`` seam: a place for large payloads, written and read as streams.

A store keeps opaque bytes under a key (a blob's UUID); it never looks inside them (inputs
and results may be base64 text or ciphertext, that is the clients' business) and never
holds a whole payload in memory. Two implementations share one contract test suite
(tests/server/test_blob_store_contract.py): :class:`~v6flow_server.blobs.local.LocalBlobStore` (a
folder) and :class:`~v6flow_server.blobs.s3.S3BlobStore` (S3-compatible object storage).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Protocol

#: Bytes a store reads or writes at a time (and so about what a stream holds in memory).
CHUNK_BYTES = 1024 * 1024
_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class BlobStoreError(Exception):
    """The store failed (I/O, network, permissions); ``str(exc)`` says why."""


class BlobMissing(BlobStoreError):
    """No blob is stored under the key."""


def check_key(key: str) -> str:
    """``key`` when it is a lower-case UUID (the only keys a store accepts).

    Raises:
        ValueError: anything else (a store never builds a path from other text).
    """
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a blob key: {key[:40]!r}")
    return key


class BlobStream:
    """An open blob: its ``size`` and its bytes, read once with ``async for``.

    Close it (:meth:`aclose`, or read to the end) to release what the store opened.
    """

    def __init__(self, size: int, chunks: AsyncIterator[bytes],
                 close: Callable[[], Awaitable[None]]) -> None:
        """Wrap a store's chunk iterator and the function that releases it."""
        self.size = size
        self._chunks = chunks
        self._close = close
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release the blob (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._close()


class BlobStore(Protocol):
    """Where blobs live. Keys are lower-case UUIDs (:func:`check_key`)."""

    kind: str
    """``local`` or ``s3`` (what ``blobs.backend`` names)."""

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the stream under ``key`` and return its size in bytes.

        The blob appears whole or not at all: when ``chunks`` raises (a client went away,
        a body limit), nothing stays stored under ``key`` and the error propagates.

        Raises:
            BlobStoreError: the store failed.
        """

    async def open(self, key: str) -> BlobStream:
        """Open the blob for reading.

        Raises:
            BlobMissing: nothing is stored under ``key``.
            BlobStoreError: the store failed.
        """

    async def delete(self, key: str) -> None:
        """Delete the blob; a missing one is no error.

        Raises:
            BlobStoreError: the store failed.
        """

    async def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    async def aclose(self) -> None:
        """Release connections (the store is not used afterwards)."""
