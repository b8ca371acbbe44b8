"""Routes for collaborations."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import AnyPrincipal, UserOrNodePrincipal, UserPrincipal, WorkDep
from server.api.openapi import errors
from server.api.pagination import PageDep, paginate_query
from server.api.params import IdPath, IdQuery, TextQuery
from server.api.serializers import collaboration_out
from server.services import collaborations
from v6flow.schemas import CollaborationCreate, CollaborationOut, Page

router = APIRouter(tags=["collaboration"])


@router.get("/collaboration", responses=errors(403))
def list_collaborations(work: WorkDep, identity: UserOrNodePrincipal, page: PageDep,
                        organization_id: IdQuery = None, name: TextQuery = None,
                        encrypted: bool | None = None) -> Page[CollaborationOut]:
    """List the collaborations the caller may see."""
    stmt = collaborations.list_collaborations(identity=identity, organization_id=organization_id,
                                              name=name, encrypted=encrypted)
    return paginate_query(work.session, stmt, page,
                          lambda rows: [collaboration_out(c) for c in rows])


@router.get("/collaboration/{collaboration_id}", responses=errors(403, 404))
def get_collaboration(collaboration_id: IdPath, work: WorkDep,
                      identity: AnyPrincipal) -> CollaborationOut:
    """One collaboration."""
    return collaboration_out(collaborations.get_collaboration(
        session=work.session, identity=identity, collaboration_id=collaboration_id))


@router.post("/collaboration", status_code=201, responses=errors(403, 404))
def create_collaboration(body: CollaborationCreate, work: WorkDep,
                         identity: UserPrincipal) -> CollaborationOut:
    """Create a collaboration of existing organizations."""
    return collaboration_out(collaborations.create_collaboration(
        session=work.session, identity=identity, data=body))
