"""Routes for organizations."""

from __future__ import annotations

from fastapi import APIRouter

from v6flow.schemas import Msg, OrganizationCreate, OrganizationOut, OrganizationUpdate, Page
from v6flow_server.api.deps import AnyPrincipal, UserOrNodePrincipal, UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import DeleteDependents, IdPath, IdQuery, TextQuery
from v6flow_server.api.serializers import organization_out
from v6flow_server.services import deletion, organizations

router = APIRouter(tags=["organization"])


@router.get("/organization", responses=errors(403))
def list_organizations(work: WorkDep, identity: AnyPrincipal, page: PageDep,
                       name: TextQuery = None, country: TextQuery = None,
                       collaboration_id: IdQuery = None,
                       study_id: IdQuery = None) -> Page[OrganizationOut]:
    """List the organizations the caller may see (``study_id``: members of a visible study)."""
    stmt = organizations.list_organizations(identity=identity, name=name, country=country,
                                            collaboration_id=collaboration_id, study_id=study_id)
    return paginate_query(work.session, stmt, page,
                          lambda rows: [organization_out(o) for o in rows])


@router.get("/organization/{organization_id}", responses=errors(403, 404))
def get_organization(organization_id: IdPath, work: WorkDep,
                     identity: AnyPrincipal) -> OrganizationOut:
    """One organization."""
    return organization_out(organizations.get_organization(
        session=work.session, identity=identity, organization_id=organization_id))


@router.post("/organization", status_code=201, responses=errors(403))
def create_organization(body: OrganizationCreate, work: WorkDep,
                        identity: UserPrincipal) -> OrganizationOut:
    """Create an organization."""
    return organization_out(organizations.create_organization(
        session=work.session, identity=identity, data=body))


@router.patch("/organization/{organization_id}", responses=errors(403, 404))
def update_organization(organization_id: IdPath, body: OrganizationUpdate, work: WorkDep,
                        identity: UserOrNodePrincipal) -> OrganizationOut:
    """Change an organization (e.g. upload its public key)."""
    return organization_out(organizations.update_organization(
        session=work.session, identity=identity, organization_id=organization_id, data=body))


@router.delete("/organization/{organization_id}", responses=errors(403, 404))
def delete_organization(organization_id: IdPath, work: WorkDep, identity: UserPrincipal,
                        delete_dependents: DeleteDependents = False) -> Msg:
    """Delete an organization; with dependents (users, nodes, roles, tasks, runs,
    memberships) only when ``delete_dependents`` is set. Never the caller's own."""
    deletion.delete_organization(session=work.session, identity=identity,
                                 organization_id=organization_id,
                                 delete_dependents=delete_dependents, outbox=work.outbox)
    return Msg(msg=f"Organization id={organization_id} has been deleted")
