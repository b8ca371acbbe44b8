"""A blob store in a folder of the server: ``<root>/<first 2 hex>/<uuid>``, mode 0600.

Writes go to ``<root>/.partial/`` first and are renamed into place once complete and synced,
so a blob is never seen half-written. File I/O runs in worker threads, one chunk
(:data:`~v6flow_server.blobs.store.CHUNK_BYTES`) at a time. Several server replicas may share the
folder (a network file system with atomic rename).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO

from anyio import to_thread

from v6flow_server.blobs.store import (
    CHUNK_BYTES,
    BlobMissing,
    BlobStoreError,
    BlobStream,
    check_key,
)

_PARTIAL = ".partial"


def _create(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb", buffering=0)


def _finish(handle: BinaryIO, tmp: Path, final: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    final.parent.mkdir(mode=0o700, exist_ok=True)
    os.replace(tmp, final)


def _discard(handle: BinaryIO, tmp: Path) -> None:
    with contextlib.suppress(OSError):
        handle.close()
    tmp.unlink(missing_ok=True)


async def _in_thread(key: str, function: Callable[..., object], *args: Any) -> None:
    """Run a file operation in a worker thread; an OSError becomes a BlobStoreError."""
    try:
        await to_thread.run_sync(function, *args)
    except OSError as exc:
        raise BlobStoreError(f"cannot write blob {key}: {exc}") from exc


class LocalBlobStore:
    """Blobs as files under ``root`` (created with mode 0700 when missing)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        """Use ``root``; it and its ``.partial`` folder are created at once.

        Raises:
            BlobStoreError: the folder cannot be created.
        """
        self.root = root
        try:
            (root / _PARTIAL).mkdir(mode=0o700, parents=True, exist_ok=True)
            root.chmod(0o700)
        except OSError as exc:
            raise BlobStoreError(f"blob folder {root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """See :meth:`v6flow_server.blobs.store.BlobStore.put`."""
        final = self._path(key)
        tmp = self.root / _PARTIAL / f"{key}.{secrets.token_hex(4)}"
        try:
            handle = await to_thread.run_sync(_create, tmp)
        except OSError as exc:
            raise BlobStoreError(f"cannot write blob {key}: {exc}") from exc
        size = 0
        pending: list[bytes] = []
        pending_bytes = 0
        try:
            async for chunk in chunks:
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= CHUNK_BYTES:
                    await _in_thread(key, handle.write, b"".join(pending))
                    size += pending_bytes
                    pending, pending_bytes = [], 0
            if pending:
                await _in_thread(key, handle.write, b"".join(pending))
                size += pending_bytes
            await _in_thread(key, _finish, handle, tmp, final)
        except BaseException:  # the stream's own error (a client gone) propagates as it is
            await to_thread.run_sync(_discard, handle, tmp)
            raise
        return size

    async def open(self, key: str) -> BlobStream:
        """See :meth:`v6flow_server.blobs.store.BlobStore.open`."""
        path = self._path(key)
        try:
            handle = await to_thread.run_sync(path.open, "rb")
        except FileNotFoundError:
            raise BlobMissing(f"no blob {key}") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc
        size = os.fstat(handle.fileno()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            while data := await to_thread.run_sync(handle.read, CHUNK_BYTES):
                yield data

        async def close() -> None:
            handle.close()

        return BlobStream(size, chunks(), close)

    async def delete(self, key: str) -> None:
        """See :meth:`v6flow_server.blobs.store.BlobStore.delete`."""
        try:
            await to_thread.run_sync(self._path(key).unlink, True)
        except OSError as exc:
            raise BlobStoreError(f"cannot delete blob {key}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        """See :meth:`v6flow_server.blobs.store.BlobStore.exists`."""
        return await to_thread.run_sync(self._path(key).is_file)

    async def remove_stale_partials(self, *, older_than: float) -> int:
        """Delete unfinished writes last touched before ``older_than`` (a crash left them)."""

        def remove() -> int:
            removed = 0
            for path in (self.root / _PARTIAL).iterdir():
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < older_than:
                        path.unlink()
                        removed += 1
            return removed

        return await to_thread.run_sync(remove)

    async def aclose(self) -> None:
        """Nothing to release."""
