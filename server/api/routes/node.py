"""Routes for nodes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api.deps import UserOrNodePrincipal, UserPrincipal, WorkDep
from server.api.pagination import PageDep, paginate_query
from server.api.shapes import node_out
from server.services import nodes
from v6flow.schemas import NodeCreate

router = APIRouter(tags=["node"])


@router.get("/node")
def list_nodes(request: Request, work: WorkDep, identity: UserOrNodePrincipal, page: PageDep,
               name: str | None = None, organization_id: int | None = None,
               collaboration_id: int | None = None, status: str | None = None,
               ip: str | None = None) -> JSONResponse:
    """List the nodes the caller may see."""
    stmt = nodes.list_nodes(identity=identity, name=name, organization_id=organization_id,
                            collaboration_id=collaboration_id, status=status, ip=ip)
    return paginate_query(request, work.session, stmt, page,
                          lambda rows: [node_out(n) for n in rows])


@router.get("/node/{node_id}")
def get_node(node_id: int, work: WorkDep, identity: UserOrNodePrincipal) -> dict[str, Any]:
    """One node."""
    return node_out(nodes.get_node(session=work.session, identity=identity, node_id=node_id))


@router.post("/node", status_code=201)
def create_node(body: NodeCreate, work: WorkDep, identity: UserPrincipal) -> dict[str, Any]:
    """Register a node; the answer carries its ``api_key``, shown only this once."""
    node, api_key = nodes.create_node(session=work.session, identity=identity, data=body)
    return {**node_out(node), "api_key": api_key}
