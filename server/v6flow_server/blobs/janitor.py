"""Deletes blobs nobody needs: released ones at once (after the commit that released them),
and uploads that no run names within ``blobs.unreferenced_ttl_seconds``.

A blob is *released* in the transaction that deletes its run (:mod:`v6flow_server.services.blobs`):
the row is marked dead, and only after that transaction commits are the bytes deleted from
the store, then the row. A crash in between leaves a dead row, which the next sweep (every
``blobs.sweep_interval_seconds``) finishes. Every step is idempotent, so several server
replicas may sweep at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from v6flow.wire import utcnow
from v6flow_server.blobs.local import LocalBlobStore
from v6flow_server.blobs.store import BlobStore, BlobStoreError
from v6flow_server.services import blobs
from v6flow_server.settings import BlobSettings

log = structlog.get_logger(__name__)
#: Blobs deleted per database round trip.
BATCH = 200


class BlobJanitor:
    """Sweeps the blob store; woken after a commit that released blobs, and on a timer."""

    def __init__(self, *, store: BlobStore, session_factory: sessionmaker[Session],
                 settings: BlobSettings) -> None:
        """Prepare (not start) the janitor; :meth:`install` hooks it to the sessions."""
        self.store = store
        self.session_factory = session_factory
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def install(self) -> None:
        """Wake the janitor after every commit that released blobs (see :data:`blobs.RELEASED`)."""
        event.listen(self.session_factory, "after_commit", self._after_commit)
        event.listen(self.session_factory, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(blobs.RELEASED, False):
            self.notify()

    @staticmethod
    def _after_rollback(session: Session) -> None:
        session.info.pop(blobs.RELEASED, None)

    def notify(self) -> None:
        """Ask for a sweep soon; callable from any thread."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        """Run the sweeps in the current event loop until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="blob-janitor")

    async def stop(self) -> None:
        """Stop sweeping and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.store.aclose()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await self.sweep()
            except Exception:  # a failed round (database or store away) must not end the job
                log.exception("blob_sweep_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(),
                                       timeout=self.settings.sweep_interval_seconds)
            self._wake.clear()

    async def sweep(self) -> int:
        """Release expired uploads, then delete released blobs; how many were deleted."""
        ttl = self.settings.unreferenced_ttl_seconds
        before = utcnow() - timedelta(seconds=ttl)
        expired = await run_in_threadpool(self._in_transaction, blobs.expire_unreferenced,
                                          before=before)
        if expired:
            log.info("blobs_expired", count=expired, ttl_seconds=ttl)
        if isinstance(self.store, LocalBlobStore):
            await self.store.remove_stale_partials(older_than=time.time() - ttl)
        deleted = 0
        while True:
            ids: list[str] = await run_in_threadpool(self._in_transaction,
                                                     blobs.released_blobs, limit=BATCH)
            gone: list[str] = []
            for blob_id in ids:
                try:
                    await self.store.delete(blob_id)
                    gone.append(blob_id)
                except BlobStoreError as exc:
                    log.warning("blob_delete_failed", blob=blob_id, error=str(exc))
            await run_in_threadpool(self._in_transaction, blobs.forget, blob_ids=gone)
            deleted += len(gone)
            if len(ids) < BATCH or len(gone) < len(ids):
                break
        if deleted:
            log.info("blobs_deleted", count=deleted)
        return deleted

    def _in_transaction(self, action: Any, **kwargs: Any) -> Any:
        with self.session_factory.begin() as session:
            return action(session=session, **kwargs)
