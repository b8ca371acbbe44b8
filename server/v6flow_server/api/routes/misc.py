"""Small endpoints the v4 clients and node call: health and version.

The blob store is in :mod:`v6flow_server.api.routes.blobstream`, ports and peer addresses in
:mod:`v6flow_server.api.routes.port` and :mod:`v6flow_server.api.routes.vpn`.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

import v6flow
from v6flow.compat import VANTAGE6_VERSION
from v6flow.schemas import HealthOut, VersionOut
from v6flow_server.api.deps import WorkDep

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


