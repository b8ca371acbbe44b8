"""Small endpoints the v4 clients and node call: health, version, ports, VPN.

The blob store's ``/blobstream`` routes are in :mod:`server.api.routes.blobstream`.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

import v6flow
from server.api.deps import AnyPrincipal, ContainerPrincipal, WorkDep
from server.api.openapi import errors
from server.api.params import IdQuery
from v6flow.compat import VANTAGE6_VERSION
from v6flow.schemas import (
    AlgorithmAddressesOut,
    HealthOut,
    PortsDeletedOut,
    VersionOut,
)

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


@router.delete("/port", responses=errors(403))
def delete_ports(_identity: AnyPrincipal, run_id: IdQuery = None) -> PortsDeletedOut:
    """No VPN ports are kept; answered so the reference node's result upload proceeds."""
    return PortsDeletedOut(msg=f"Ports of run id={run_id} removed", deleted=0)


@router.get("/vpn/algorithm/addresses", responses=errors(403))
def vpn_addresses(_identity: ContainerPrincipal) -> AlgorithmAddressesOut:
    """There is no VPN: no algorithm addresses."""
    return AlgorithmAddressesOut(addresses=[])
