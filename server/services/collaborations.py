"""Collaborations: visibility and creation."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from server.auth.permissions import Operation, Resource, Scope
from server.auth.principals import Identity
from server.db.models import Collaboration, Organization
from server.errors import BadRequestError, ForbiddenError, NotFoundError
from server.services.visibility import NO_PERMISSION, Visibility
from v6flow.schemas import CollaborationCreate


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
