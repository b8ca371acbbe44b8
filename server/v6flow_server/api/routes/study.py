"""Routes for studies: some organizations of one collaboration."""

from __future__ import annotations

from fastapi import APIRouter

from v6flow.schemas import (
    Msg,
    OrganizationOut,
    OrganizationRef,
    Page,
    StudyCreate,
    StudyOut,
    StudyUpdate,
)
from v6flow_server.api.deps import AnyPrincipal, UserOrNodePrincipal, UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import DeleteDependents, IdPath, IdQuery, IncludeQuery, TextQuery
from v6flow_server.api.serializers import organization_out, study_out
from v6flow_server.services import deletion, studies

router = APIRouter(tags=["study"])
ORGANIZATIONS = "organizations"


@router.get("/study", responses=errors(403))
def list_studies(work: WorkDep, identity: UserOrNodePrincipal, page: PageDep,
                 name: TextQuery = None, organization_id: IdQuery = None,
                 collaboration_id: IdQuery = None,
                 include: IncludeQuery = None) -> Page[StudyOut]:
    """List the studies the caller may see; ``include=organizations`` embeds the members."""
    stmt = studies.list_studies(identity=identity, name=name, organization_id=organization_id,
                                collaboration_id=collaboration_id)
    embed = ORGANIZATIONS in (include or [])
    return paginate_query(work.session, stmt, page, lambda rows: [
        study_out(s, with_organizations=embed) for s in rows])


@router.get("/study/{study_id}", responses=errors(403, 404))
def get_study(study_id: IdPath, work: WorkDep, identity: AnyPrincipal,
              include: IncludeQuery = None) -> StudyOut:
    """One study; ``include=organizations`` embeds the members."""
    study = studies.get_study(session=work.session, identity=identity, study_id=study_id)
    return study_out(study, with_organizations=ORGANIZATIONS in (include or []))


@router.post("/study", status_code=201, responses=errors(403, 404))
def create_study(body: StudyCreate, work: WorkDep, identity: UserPrincipal) -> StudyOut:
    """Create a study of some organizations of a collaboration."""
    study = studies.create_study(session=work.session, identity=identity, data=body)
    return study_out(study, with_organizations=True)


@router.patch("/study/{study_id}", responses=errors(403, 404))
def update_study(study_id: IdPath, body: StudyUpdate, work: WorkDep,
                 identity: UserPrincipal) -> StudyOut:
    """Rename a study or replace its organizations."""
    study = studies.update_study(session=work.session, identity=identity, study_id=study_id,
                                 data=body)
    return study_out(study, with_organizations=True)


@router.delete("/study/{study_id}", responses=errors(403, 404))
def delete_study(study_id: IdPath, work: WorkDep, identity: UserPrincipal,
                 delete_dependents: DeleteDependents = False) -> Msg:
    """Delete a study; with tasks only when ``delete_dependents`` is set."""
    deletion.delete_study(session=work.session, identity=identity, study_id=study_id,
                          delete_dependents=delete_dependents, outbox=work.outbox)
    return Msg(msg=f"Study id={study_id} successfully deleted")


@router.post("/study/{study_id}/organization", responses=errors(403, 404))
def add_organization(study_id: IdPath, body: OrganizationRef, work: WorkDep,
                     identity: UserPrincipal) -> list[OrganizationOut]:
    """Add an organization of the study's collaboration; answers the members."""
    members = studies.add_organization(session=work.session, identity=identity,
                                       study_id=study_id, organization_id=body.id)
    return [organization_out(o) for o in members]


@router.delete("/study/{study_id}/organization", responses=errors(403, 404))
def remove_organization(study_id: IdPath, body: OrganizationRef, work: WorkDep,
                        identity: UserPrincipal) -> list[OrganizationOut]:
    """Remove an organization (its tasks in the study stay); answers the members."""
    members = studies.remove_organization(session=work.session, identity=identity,
                                          study_id=study_id, organization_id=body.id)
    return [organization_out(o) for o in members]
