"""Routes of the blob store (vantage6 4.x ``/blobstream``): status, streamed upload and download.

Bodies are streamed both ways, a chunk at a time: an upload goes from the socket into the
store as it arrives (its size bounded by ``blobs.max_blob_bytes`` in
:mod:`v6flow_server.api.limits`), a download from the store onto the socket. The caller's token is
resolved in a short transaction of its own, and each step in the database is one short
transaction: no transaction stays open while bytes flow (SQLite's write lock would otherwise
stop every other writer for the length of a transfer). The rules are in
:mod:`v6flow_server.services.blobs` and :func:`v6flow_server.services.runs.readable_blob`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from v6flow.schemas import BlobCreatedOut, BlobStoreStatusOut
from v6flow_server.api.deps import BearerDep, StateDep
from v6flow_server.api.openapi import errors
from v6flow_server.auth.principals import Identity
from v6flow_server.blobs import BlobMissing, BlobStore
from v6flow_server.errors import NotFoundError
from v6flow_server.services import blobs, runs
from v6flow_server.services.auth import resolve_identity
from v6flow_server.state import AppState

router = APIRouter(tags=["blobstream"])
log = structlog.get_logger(__name__)
T = TypeVar("T")
NO_STORE = "This server keeps no blob store: inputs and results travel inline"
_OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def blob_identity(state: StateDep, token: BearerDep) -> Identity:
    """The caller, resolved in a transaction that ends before any byte is streamed."""
    with state.session_factory.begin() as session:
        return resolve_identity(session=session, issuer=state.token_issuer(), token=token)


BlobIdentity = Annotated[Identity, Depends(blob_identity)]
BlobIdPath = Annotated[uuid.UUID, PathParam(description="The UUID that names the blob.")]


def _store(state: AppState) -> BlobStore:
    if state.blob_store is None:
        raise NotFoundError(NO_STORE)
    return state.blob_store


def _in_transaction(state: AppState, action: Callable[..., T], **kwargs: Any) -> T:
    with state.session_factory.begin() as session:
        return action(session=session, **kwargs)


@router.get("/blobstream/status", response_model_exclude_none=True)
def blobstream_status(state: StateDep) -> BlobStoreStatusOut:
    """Whether this server keeps a blob store, and which payloads v6flow sends there
    (without one, exactly v4's ``{"blob_store_enabled": false}``)."""
    if state.blob_store is None:
        return BlobStoreStatusOut(blob_store_enabled=False)
    settings = state.settings.blobs
    return BlobStoreStatusOut(blob_store_enabled=True, threshold_bytes=settings.threshold_bytes,
                              max_blob_bytes=settings.max_blob_bytes)


@router.post("/blobstream", status_code=201, responses=errors(403, 404), openapi_extra={
    "requestBody": {"required": True, "content": _OCTETS,
                    "description": "The payload, streamed (chunked or with a length)."}})
async def upload_blob(request: Request, state: StateDep,
                      identity: BlobIdentity) -> BlobCreatedOut:
    """Store the streamed body as a new blob and answer its UUID (name it once, as a task
    input or a run result, within ``blobs.unreferenced_ttl_seconds``)."""
    store = _store(state)
    blob_id = await run_in_threadpool(_in_transaction, state, blobs.begin_upload,
                                      identity=identity)
    began = time.perf_counter()
    try:
        size = await store.put(blob_id, request.stream())
        finished = await run_in_threadpool(_in_transaction, state, blobs.finish_upload,
                                           blob_id=blob_id, size=size)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_in_transaction, state, blobs.abort_upload, blob_id=blob_id)
        raise
    if not finished:  # the janitor expired it meanwhile (an upload slower than the TTL)
        await store.delete(blob_id)
        raise NotFoundError(f"Blob {blob_id} expired before its upload finished")
    log.info("blob_stored", blob=blob_id, bytes=size,
             seconds=round(time.perf_counter() - began, 3))
    return BlobCreatedOut(uuid=blob_id)


@router.get("/blobstream/{blob_id}", response_class=StreamingResponse, responses={
    **errors(403, 404),
    200: {"description": "The blob's bytes, streamed", "content": _OCTETS}})
async def download_blob(blob_id: BlobIdPath, state: StateDep,
                        identity: BlobIdentity) -> StreamingResponse:
    """Stream a blob that a run names, to whoever may read that run's input or result."""
    store = _store(state)
    key = str(blob_id)
    await run_in_threadpool(_in_transaction, state, runs.readable_blob, identity=identity,
                            blob_id=key)
    try:
        stream = await store.open(key)
    except BlobMissing:
        raise NotFoundError(f"Blob {key} not found") from None
    return StreamingResponse(
        stream, media_type="application/octet-stream",
        headers={"Content-Length": str(stream.size),
                 "Content-Disposition": f'attachment; filename="{key}.bin"'},
        background=BackgroundTask(stream.aclose))
