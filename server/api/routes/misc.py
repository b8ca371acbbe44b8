"""Small endpoints the v4 clients and node call: health, version, blob store, ports, VPN."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

import v6flow
from server.api.deps import AnyPrincipal, ContainerPrincipal, WorkDep

router = APIRouter(tags=["misc"])
COMPATIBLE_VERSION = "4.15.2"


@router.get("/health")
def health(work: WorkDep) -> dict[str, bool]:
    """Whether the database answers."""
    work.session.execute(text("SELECT 1"))
    return {"database": True}


@router.get("/version")
def version() -> dict[str, str]:
    """The vantage6 version we are compatible with, and our own."""
    return {"version": COMPATIBLE_VERSION, "v6flow": v6flow.__version__}


@router.get("/blobstream/status")
def blobstream_status() -> dict[str, bool]:
    """There is no blob store: results travel in the run's ``result`` field."""
    return {"blob_store_enabled": False}


@router.delete("/port")
def delete_ports(_identity: AnyPrincipal, run_id: int | None = None) -> dict[str, Any]:
    """No VPN ports are kept; answered so the reference node's result upload proceeds."""
    return {"msg": f"Ports of run id={run_id} removed", "deleted": 0}


@router.get("/vpn/algorithm/addresses")
def vpn_addresses(_identity: ContainerPrincipal) -> dict[str, list[Any]]:
    """There is no VPN: no algorithm addresses."""
    return {"addresses": []}
