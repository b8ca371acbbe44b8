"""Studies: some organizations of one collaboration. Visibility, edits, membership, deletion.

Rules (study resource; v4's, with one stricter point):

- VIEW: global; collaboration scope sees the studies of the caller's collaborations;
  organization scope the studies the caller's organization is a member of.
- CREATE: global, or collaboration scope in one of the caller's collaborations.
- EDIT: global, collaboration scope (the caller's collaborations) or organization scope (a
  study of the caller's organization). Changing *who is in* a study (``organization_ids``,
  ``POST/DELETE /study/<id>/organization``) needs collaboration scope or wider: v4 lets an
  organization-scope editor replace the member list through PATCH but not add one member
  through ``/organization``; here both ask for the same rule.
- DELETE (:mod:`v6flow_server.services.deletion`): like EDIT.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from v6flow.schemas import StudyCreate, StudyUpdate
from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import Identity
from v6flow_server.db.models import Collaboration, Organization, Study
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.services.common import get_or_404
from v6flow_server.services.scope import reaches
from v6flow_server.services.visibility import NO_PERMISSION, Visibility


def visible(identity: Identity) -> ColumnElement[bool]:
    """The studies ``identity`` may see, as a condition on :class:`Study`.

    Raises:
        ForbiddenError: no study VIEW rule at all.
    """
    scope = identity.scope(Resource.STUDY, Operation.VIEW)
    member = Study.organizations.any(Organization.id == identity.organization_id)
    if scope is Scope.GLOBAL:
        return true()
    if scope is Scope.COLLABORATION:
        return Study.collaboration_id.in_(identity.collaboration_ids) | member
    if scope is not None:
        return member
    raise ForbiddenError(NO_PERMISSION)


STUDIES = Visibility(Study, "Study", visible)


def list_studies(*, identity: Identity, name: str | None = None,
                 organization_id: int | None = None,
                 collaboration_id: int | None = None) -> Select[Study]:
    """Query of the visible studies, filtered.

    Raises:
        ForbiddenError: no study VIEW rule.
    """
    return STUDIES.query(identity, [
        (name, Study.name.like),
        (organization_id, lambda value: Study.organizations.any(Organization.id == value)),
        (collaboration_id, lambda value: Study.collaboration_id == value),
    ])


def get_study(*, session: Session, identity: Identity, study_id: int) -> Study:
    """One visible study.

    Raises:
        NotFoundError, ForbiddenError.
    """
    return STUDIES.get(session=session, identity=identity, object_id=study_id)


def reaches_study(identity: Identity, operation: Operation, study: Study, *,
             membership: bool = False) -> bool:
    """Whether the caller's rule reaches ``study``; ``membership`` changes need collaboration
    scope or wider (the caller's own membership is not enough)."""
    members = () if membership else [o.id for o in study.organizations]
    return reaches(identity, Resource.STUDY, operation,
                   collaboration_ids=[study.collaboration_id], organization_ids=members)


def _name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    existing = session.scalar(select(Study.id).where(Study.name == name))
    if existing is not None and existing != except_id:
        raise BadRequestError(f"Study with name '{name}' already exists!")


def _members(session: Session, collab: Collaboration,
             organization_ids: Sequence[int]) -> list[Organization]:
    """The organizations named, each a member of ``collab``.

    Raises:
        NotFoundError: an unknown organization.
        BadRequestError: organizations outside the collaboration (named).
    """
    organizations = [get_or_404(session, Organization, oid, "Organization")
                     for oid in organization_ids]
    inside = {o.id for o in collab.organizations}
    outside = [o.id for o in organizations if o.id not in inside]
    if outside:
        raise BadRequestError(
            f"Organization(s) {outside} are not part of collaboration id={collab.id}")
    return organizations


def create_study(*, session: Session, identity: Identity, data: StudyCreate) -> Study:
    """Create a study of some organizations of a collaboration.

    Raises:
        NotFoundError: unknown collaboration or organization.
        ForbiddenError: no study CREATE rule reaching the collaboration.
        BadRequestError: name taken, organizations outside the collaboration.
    """
    collab = get_or_404(session, Collaboration, data.collaboration_id, "Collaboration")
    if not reaches(identity, Resource.STUDY, Operation.CREATE, collaboration_ids=[collab.id]):
        raise ForbiddenError(NO_PERMISSION)
    _name_free(session, data.name)
    study = Study(name=data.name, collaboration=collab,
                  organizations=_members(session, collab, data.organization_ids))
    session.add(study)
    session.flush()
    return study


def update_study(*, session: Session, identity: Identity, study_id: int,
                 data: StudyUpdate) -> Study:
    """Rename a study or replace its organizations.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (name taken, organizations outside
        the collaboration).
    """
    study = get_or_404(session, Study, study_id, "Study")
    if not reaches_study(identity, Operation.EDIT, study):
        raise ForbiddenError(NO_PERMISSION)
    if data.organization_ids is not None:
        if not reaches_study(identity, Operation.EDIT, study, membership=True):
            raise ForbiddenError("You lack the permission to change the organizations of a "
                                 "study!")
        study.organizations = _members(session, study.collaboration, data.organization_ids)
    if data.name is not None:
        _name_free(session, data.name, except_id=study.id)
        study.name = data.name
    session.flush()
    return study


def add_organization(*, session: Session, identity: Identity, study_id: int,
                     organization_id: int) -> list[Organization]:
    """Add one organization of the study's collaboration; returns the members.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (outside the collaboration, or
        already a member).
    """
    study = get_or_404(session, Study, study_id, "Study")
    if not reaches_study(identity, Operation.EDIT, study, membership=True):
        raise ForbiddenError(NO_PERMISSION)
    (org,) = _members(session, study.collaboration, [organization_id])
    if org in study.organizations:
        raise BadRequestError(f"Organization id={org.id} is already part of study id={study.id}")
    study.organizations.append(org)
    session.flush()
    return sorted(study.organizations, key=lambda o: o.id)


def remove_organization(*, session: Session, identity: Identity, study_id: int,
                        organization_id: int) -> list[Organization]:
    """Remove one organization; its tasks in the study stay. Returns the members.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (not a member).
    """
    study = get_or_404(session, Study, study_id, "Study")
    if not reaches_study(identity, Operation.EDIT, study, membership=True):
        raise ForbiddenError(NO_PERMISSION)
    org = get_or_404(session, Organization, organization_id, "Organization")
    if org not in study.organizations:
        raise BadRequestError(f"Organization id={org.id} is not part of study id={study.id}")
    study.organizations.remove(org)
    session.flush()
    return sorted(study.organizations, key=lambda o: o.id)
