"""Routes for organizations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api.deps import AnyPrincipal, UserOrNodePrincipal, UserPrincipal, WorkDep
from server.api.pagination import PageDep, paginate_query
from server.api.shapes import organization_out
from server.services import organizations
from v6flow.schemas import OrganizationCreate, OrganizationUpdate

router = APIRouter(tags=["organization"])


@router.get("/organization")
def list_organizations(request: Request, work: WorkDep, identity: AnyPrincipal, page: PageDep,
                       name: str | None = None, country: str | None = None,
                       collaboration_id: int | None = None,
                       study_id: int | None = None) -> JSONResponse:
    """List the organizations the caller may see."""
    stmt = organizations.list_organizations(identity=identity, name=name, country=country,
                                            collaboration_id=collaboration_id, study_id=study_id)
    return paginate_query(request, work.session, stmt, page,
                          lambda rows: [organization_out(o) for o in rows])


@router.get("/organization/{organization_id}")
def get_organization(organization_id: int, work: WorkDep,
                     identity: AnyPrincipal) -> dict[str, Any]:
    """One organization."""
    return organization_out(organizations.get_organization(
        session=work.session, identity=identity, organization_id=organization_id))


@router.post("/organization", status_code=201)
def create_organization(body: OrganizationCreate, work: WorkDep,
                        identity: UserPrincipal) -> dict[str, Any]:
    """Create an organization."""
    return organization_out(organizations.create_organization(
        session=work.session, identity=identity, data=body))


@router.patch("/organization/{organization_id}")
def update_organization(organization_id: int, body: OrganizationUpdate, work: WorkDep,
                        identity: UserOrNodePrincipal) -> dict[str, Any]:
    """Change an organization (e.g. upload its public key)."""
    return organization_out(organizations.update_organization(
        session=work.session, identity=identity, organization_id=organization_id, data=body))
