"""Routes for nodes."""

from __future__ import annotations

from fastapi import APIRouter

from v6flow.schemas import Msg, NodeCreate, NodeCreatedOut, NodeOut, NodeUpdate, Page
from v6flow_server.api.deps import UserOrNodePrincipal, UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import IdPath, IdQuery, TextQuery
from v6flow_server.api.serializers import node_out
from v6flow_server.services import nodes

router = APIRouter(tags=["node"])


@router.get("/node", responses=errors(403))
def list_nodes(work: WorkDep, identity: UserOrNodePrincipal, page: PageDep,
               name: TextQuery = None, organization_id: IdQuery = None,
               collaboration_id: IdQuery = None, status: TextQuery = None,
               ip: TextQuery = None, study_id: IdQuery = None) -> Page[NodeOut]:
    """List the nodes the caller may see (``study_id``: of a visible study's members)."""
    stmt = nodes.list_nodes(identity=identity, name=name, organization_id=organization_id,
                            collaboration_id=collaboration_id, status=status, ip=ip,
                            study_id=study_id)
    return paginate_query(work.session, stmt, page, lambda rows: [node_out(n) for n in rows])


@router.get("/node/{node_id}", responses=errors(403, 404))
def get_node(node_id: IdPath, work: WorkDep, identity: UserOrNodePrincipal) -> NodeOut:
    """One node."""
    return node_out(nodes.get_node(session=work.session, identity=identity, node_id=node_id))


@router.post("/node", status_code=201, responses=errors(403, 404))
def create_node(body: NodeCreate, work: WorkDep, identity: UserPrincipal) -> NodeCreatedOut:
    """Register a node; the answer carries its ``api_key``, shown only this once."""
    node, api_key = nodes.create_node(session=work.session, identity=identity, data=body)
    return NodeCreatedOut(**node_out(node).model_dump(), api_key=api_key)


@router.patch("/node/{node_id}", responses=errors(403, 404))
def update_node(node_id: IdPath, body: NodeUpdate, work: WorkDep,
                identity: UserOrNodePrincipal) -> NodeOut:
    """Rename a node or set/clear its VPN address (a node may change only itself)."""
    return node_out(nodes.update_node(session=work.session, identity=identity, node_id=node_id,
                                      data=body))


@router.delete("/node/{node_id}", responses=errors(403, 404))
def delete_node(node_id: IdPath, work: WorkDep, identity: UserPrincipal) -> Msg:
    """Delete a node: its API key and tokens stop working at once."""
    nodes.delete_node(session=work.session, identity=identity, node_id=node_id)
    return Msg(msg=f"Successfully deleted node id={node_id}")
