"""Routes for the ports algorithm containers listen on (v4 ``/port``, node side)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from v6flow.schemas import MAX_ID, Page, PortCreate, PortOut, PortsDeletedOut
from v6flow_server.api.deps import AnyPrincipal, NodePrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import IdQuery
from v6flow_server.api.serializers import port_out
from v6flow_server.db.models import AlgorithmPort
from v6flow_server.services import ports

router = APIRouter(tags=["port"])

RunIdRequired = Annotated[int, Query(ge=1, le=MAX_ID, description="The run whose ports go.")]


@router.post("/port", status_code=201, responses=errors(403, 404, 409))
def create_port(body: PortCreate, work: WorkDep, node: NodePrincipal) -> PortOut:
    """Register a port the container of one of this node's runs listens on (node only)."""
    return port_out(ports.register_port(session=work.session, node=node, data=body))


@router.get("/port", responses=errors(403))
def list_ports(work: WorkDep, identity: AnyPrincipal, page: PageDep,
               run_id: IdQuery = None) -> Page[PortOut]:
    """List the registered ports of the runs the caller may see (port VIEW rule)."""
    stmt = ports.list_ports(identity=identity, run_id=run_id)

    def shape(rows: Sequence[AlgorithmPort]) -> list[PortOut]:
        return [port_out(row) for row in rows]

    return paginate_query(work.session, stmt, page, shape)


@router.delete("/port", responses=errors(403, 404))
def delete_ports(work: WorkDep, node: NodePrincipal, run_id: RunIdRequired) -> PortsDeletedOut:
    """Remove every port of one of this node's runs (when its container stopped)."""
    deleted = ports.delete_ports(session=work.session, node=node, run_id=run_id)
    return PortsDeletedOut(msg="Ports removed from the database.", deleted=deleted)
