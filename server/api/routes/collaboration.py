"""Routes for collaborations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api.deps import AnyPrincipal, UserOrNodePrincipal, UserPrincipal, WorkDep
from server.api.pagination import PageDep, paginate_query
from server.api.shapes import collaboration_out
from server.services import collaborations
from v6flow.schemas import CollaborationCreate

router = APIRouter(tags=["collaboration"])


@router.get("/collaboration")
def list_collaborations(request: Request, work: WorkDep, identity: UserOrNodePrincipal,
                        page: PageDep, organization_id: int | None = None,
                        name: str | None = None, encrypted: bool | None = None) -> JSONResponse:
    """List the collaborations the caller may see."""
    stmt = collaborations.list_collaborations(identity=identity, organization_id=organization_id,
                                              name=name, encrypted=encrypted)
    return paginate_query(request, work.session, stmt, page,
                          lambda rows: [collaboration_out(c) for c in rows])


@router.get("/collaboration/{collaboration_id}")
def get_collaboration(collaboration_id: int, work: WorkDep,
                      identity: AnyPrincipal) -> dict[str, Any]:
    """One collaboration."""
    return collaboration_out(collaborations.get_collaboration(
        session=work.session, identity=identity, collaboration_id=collaboration_id))


@router.post("/collaboration", status_code=201)
def create_collaboration(body: CollaborationCreate, work: WorkDep,
                         identity: UserPrincipal) -> dict[str, Any]:
    """Create a collaboration of existing organizations."""
    return collaboration_out(collaborations.create_collaboration(
        session=work.session, identity=identity, data=body))
