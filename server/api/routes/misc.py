"""Small endpoints the v4 clients and node call: health, version, blob store."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

import v6flow
from server.api.deps import WorkDep
from v6flow.compat import VANTAGE6_VERSION
from v6flow.schemas import BlobStoreStatusOut, HealthOut, VersionOut

router = APIRouter(tags=["misc"])


@router.get("/health")
def health(work: WorkDep) -> HealthOut:
    """Whether the database answers."""
    work.session.execute(text("SELECT 1"))
    return HealthOut(database=True)


@router.get("/version")
def version() -> VersionOut:
    """The vantage6 version we are compatible with, and our own."""
    return VersionOut(version=VANTAGE6_VERSION, v6flow=v6flow.__version__)


@router.get("/blobstream/status")
def blobstream_status() -> BlobStoreStatusOut:
    """There is no blob store: results travel in the run's ``result`` field."""
    return BlobStoreStatusOut(blob_store_enabled=False)
