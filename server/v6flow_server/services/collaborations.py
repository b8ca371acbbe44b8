"""Collaborations: visibility, creation, edits, membership and deletion.

Rules (collaboration resource, as v4):

- EDIT (name, ``encrypted``): global, or collaboration scope for the caller's collaborations.
- Who is a member (``organization_ids`` in PATCH, ``POST/DELETE /collaboration/<id>/
  organization``) needs EDIT at global scope. v4 asks that only on PATCH ("a permission
  escalation", since a collaboration-scope admin gains rules over every organization added)
  and forgets it on ``/organization``; here every membership change asks for it.
- DELETE (:mod:`v6flow_server.services.deletion`): global, or collaboration scope for the caller's
  collaborations.

Removing an organization from a collaboration:

- refused (400) while the organization has a node in it: delete the node first, so that no
  node keeps serving a collaboration its organization left;
- the organization also leaves the collaboration's studies (a study is a subset of its
  collaboration);
- its tasks and runs there are kept as history (v4 does the same): nothing stored is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from v6flow.schemas import CollaborationCreate, CollaborationUpdate
from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import Identity
from v6flow_server.db.models import Collaboration, Node, Organization
from v6flow_server.errors import BadRequestError, ForbiddenError, NotFoundError
from v6flow_server.services.common import get_or_404
from v6flow_server.services.scope import reaches
from v6flow_server.services.visibility import NO_PERMISSION, Visibility


def _visible(identity: Identity) -> ColumnElement[bool]:
    scope = identity.scope(Resource.COLLABORATION, Operation.VIEW)
    if scope is Scope.GLOBAL:
        return true()
    if scope is not None:
        return Collaboration.id.in_(identity.collaboration_ids)
    raise ForbiddenError(NO_PERMISSION)


COLLABORATIONS = Visibility(Collaboration, "Collaboration", _visible)


def list_collaborations(*, identity: Identity, organization_id: int | None = None,
                        name: str | None = None, encrypted: bool | None = None
                        ) -> Select[Collaboration]:
    """Query of the visible collaborations, filtered.

    Raises:
        ForbiddenError: no collaboration VIEW rule.
    """
    return COLLABORATIONS.query(identity, [
        (organization_id,
         lambda value: Collaboration.organizations.any(Organization.id == value)),
        (name, Collaboration.name.like),
        (encrypted, lambda value: Collaboration.encrypted == value),
    ])


def get_collaboration(*, session: Session, identity: Identity,
                      collaboration_id: int) -> Collaboration:
    """One visible collaboration.

    Raises:
        NotFoundError, ForbiddenError.
    """
    return COLLABORATIONS.get(session=session, identity=identity, object_id=collaboration_id)


def create_collaboration(*, session: Session, identity: Identity,
                         data: CollaborationCreate) -> Collaboration:
    """Create a collaboration of existing organizations (collaboration CREATE, global).

    Raises:
        ForbiddenError, BadRequestError (name taken), NotFoundError (unknown organization).
    """
    if not identity.can(Resource.COLLABORATION, Operation.CREATE, Scope.GLOBAL):
        raise ForbiddenError(NO_PERMISSION)
    if session.scalar(select(Collaboration).where(Collaboration.name == data.name)):
        raise BadRequestError(f"Collaboration name '{data.name}' already exists!")
    organizations = []
    for org_id in dict.fromkeys(data.organization_ids):
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFoundError(f"Organization id={org_id} not found")
        organizations.append(org)
    collab = Collaboration(name=data.name, encrypted=data.encrypted, organizations=organizations)
    session.add(collab)
    session.flush()
    return collab


def _may(identity: Identity, operation: Operation, collab: Collaboration) -> bool:
    return reaches(identity, Resource.COLLABORATION, operation, collaboration_ids=[collab.id])


def _may_change_members(identity: Identity) -> bool:
    return identity.can(Resource.COLLABORATION, Operation.EDIT, Scope.GLOBAL)


def _name_free(session: Session, name: str, *, except_id: int) -> None:
    existing = session.scalar(select(Collaboration.id).where(Collaboration.name == name))
    if existing is not None and existing != except_id:
        raise BadRequestError(f"Collaboration name '{name}' already exists!")


def _organizations(session: Session, organization_ids: Sequence[int]) -> list[Organization]:
    return [get_or_404(session, Organization, oid, "Organization") for oid in organization_ids]


def _leave(session: Session, collab: Collaboration, leaving: Sequence[Organization]) -> None:
    """Checks and consequences of organizations leaving ``collab`` (see the module doc).

    Raises:
        BadRequestError: a leaving organization still has a node in the collaboration.
    """
    if not leaving:
        return
    ids = [o.id for o in leaving]
    nodes = session.execute(select(Node.id, Node.organization_id).where(
        Node.collaboration_id == collab.id, Node.organization_id.in_(ids))
        .order_by(Node.id)).all()
    if nodes:
        named = ", ".join(f"node id={n} (organization id={o})" for n, o in nodes)
        raise BadRequestError(
            f"Cannot remove organization(s) from collaboration id={collab.id}: they still "
            f"have {named} in it. Delete the node(s) first")
    for study in collab.studies:
        study.organizations = [o for o in study.organizations if o.id not in ids]


def update_collaboration(*, session: Session, identity: Identity, collaboration_id: int,
                         data: CollaborationUpdate) -> Collaboration:
    """Rename, (un)set ``encrypted`` or replace the members (see the module doc).

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (name taken, a leaving member still
        has a node).
    """
    collab = get_or_404(session, Collaboration, collaboration_id, "Collaboration")
    if not _may(identity, Operation.EDIT, collab):
        raise ForbiddenError(NO_PERMISSION)
    if data.organization_ids is not None:
        if not _may_change_members(identity):
            raise ForbiddenError(
                "You lack the permission to change the organizations of a collaboration!")
        members = _organizations(session, data.organization_ids)
        _leave(session, collab, [o for o in collab.organizations if o not in members])
        collab.organizations = members
    if data.name is not None:
        _name_free(session, data.name, except_id=collab.id)
        collab.name = data.name
    if data.encrypted is not None:
        collab.encrypted = data.encrypted
    session.flush()
    return collab


def add_organization(*, session: Session, identity: Identity, collaboration_id: int,
                     organization_id: int) -> list[Organization]:
    """Add one organization; returns the members.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (already a member).
    """
    collab = get_or_404(session, Collaboration, collaboration_id, "Collaboration")
    if not _may_change_members(identity):
        raise ForbiddenError(NO_PERMISSION)
    org = get_or_404(session, Organization, organization_id, "Organization")
    if org in collab.organizations:
        raise BadRequestError(
            f"Organization id={org.id} is already part of collaboration id={collab.id}")
    collab.organizations.append(org)
    session.flush()
    return sorted(collab.organizations, key=lambda o: o.id)


def remove_organization(*, session: Session, identity: Identity, collaboration_id: int,
                        organization_id: int) -> list[Organization]:
    """Remove one organization (see the module doc); returns the members.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (not a member, or it still has a
        node in the collaboration).
    """
    collab = get_or_404(session, Collaboration, collaboration_id, "Collaboration")
    if not _may_change_members(identity):
        raise ForbiddenError(NO_PERMISSION)
    org = get_or_404(session, Organization, organization_id, "Organization")
    if org not in collab.organizations:
        raise BadRequestError(
            f"Organization id={org.id} is not part of collaboration id={collab.id}")
    _leave(session, collab, [org])
    collab.organizations.remove(org)
    session.flush()
    return sorted(collab.organizations, key=lambda o: o.id)
