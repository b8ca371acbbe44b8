"""Routes for collaborations and their member organizations."""

from __future__ import annotations

from fastapi import APIRouter

from v6flow.schemas import (
    CollaborationCreate,
    CollaborationOut,
    CollaborationUpdate,
    Msg,
    OrganizationOut,
    OrganizationRef,
    Page,
)
from v6flow_server.api.deps import AnyPrincipal, UserOrNodePrincipal, UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import DeleteDependents, IdPath, IdQuery, TextQuery
from v6flow_server.api.serializers import collaboration_out, organization_out
from v6flow_server.services import collaborations, deletion

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


@router.patch("/collaboration/{collaboration_id}", responses=errors(403, 404))
def update_collaboration(collaboration_id: IdPath, body: CollaborationUpdate, work: WorkDep,
                         identity: UserPrincipal) -> CollaborationOut:
    """Rename, (un)set ``encrypted`` or replace the member organizations."""
    return collaboration_out(collaborations.update_collaboration(
        session=work.session, identity=identity, collaboration_id=collaboration_id, data=body))


@router.delete("/collaboration/{collaboration_id}", responses=errors(403, 404))
def delete_collaboration(collaboration_id: IdPath, work: WorkDep, identity: UserPrincipal,
                         delete_dependents: DeleteDependents = False) -> Msg:
    """Delete a collaboration; with tasks, nodes or studies only when ``delete_dependents``."""
    deletion.delete_collaboration(session=work.session, identity=identity,
                                  collaboration_id=collaboration_id,
                                  delete_dependents=delete_dependents, outbox=work.outbox)
    return Msg(msg=f"Collaboration id={collaboration_id} successfully deleted")


@router.post("/collaboration/{collaboration_id}/organization", responses=errors(403, 404))
def add_organization(collaboration_id: IdPath, body: OrganizationRef, work: WorkDep,
                     identity: UserPrincipal) -> list[OrganizationOut]:
    """Add an organization; answers the members."""
    members = collaborations.add_organization(
        session=work.session, identity=identity, collaboration_id=collaboration_id,
        organization_id=body.id)
    return [organization_out(o) for o in members]


@router.delete("/collaboration/{collaboration_id}/organization", responses=errors(403, 404))
def remove_organization(collaboration_id: IdPath, body: OrganizationRef, work: WorkDep,
                        identity: UserPrincipal) -> list[OrganizationOut]:
    """Remove an organization (refused while it has a node here); answers the members."""
    members = collaborations.remove_organization(
        session=work.session, identity=identity, collaboration_id=collaboration_id,
        organization_id=body.id)
    return [organization_out(o) for o in members]
