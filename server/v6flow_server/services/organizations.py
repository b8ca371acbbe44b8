"""Organizations: visibility, creation and edits (deletion: :mod:`v6flow_server.services.deletion`).

``GET /organization?study_id=`` lists the members of a study the caller may see (study VIEW
rule), narrowed to the organizations the caller may see.
"""

from __future__ import annotations

from base64 import b64decode

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from v6flow.crypto import public_key_from_wire
from v6flow.errors import InvalidKey
from v6flow.schemas import OrganizationCreate, OrganizationUpdate
from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import Identity
from v6flow_server.db.models import Collaboration, Organization, Study, member_table
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.services import studies
from v6flow_server.services.common import get_or_404
from v6flow_server.services.scope import reaches
from v6flow_server.services.visibility import (
    NO_PERMISSION as NO_PERMISSION,  # re-exported for others
)
from v6flow_server.services.visibility import Visibility


def _shared_org_ids(identity: Identity) -> Select[int]:
    return select(member_table.c.organization_id).where(
        member_table.c.collaboration_id.in_(identity.collaboration_ids)
    )


def _visible(identity: Identity) -> ColumnElement[bool]:
    scope = identity.scope(Resource.ORGANIZATION, Operation.VIEW)
    if scope is Scope.GLOBAL:
        return true()
    if scope is Scope.COLLABORATION:
        return (Organization.id == identity.organization_id) | Organization.id.in_(
            _shared_org_ids(identity))
    if scope is not None:
        return Organization.id == identity.organization_id
    raise ForbiddenError(NO_PERMISSION)


ORGANIZATIONS = Visibility(Organization, "Organization", _visible)


def list_organizations(*, identity: Identity, name: str | None = None,
                       country: str | None = None, collaboration_id: int | None = None,
                       study_id: int | None = None) -> Select[Organization]:
    """Query of the organizations the caller may see, filtered.

    Raises:
        ForbiddenError: no organization VIEW rule, or ``study_id`` without a study VIEW rule.
    """
    return ORGANIZATIONS.query(identity, [
        (name, Organization.name.like),
        (country, lambda value: Organization.country == value),
        (collaboration_id,
         lambda value: Organization.collaborations.any(Collaboration.id == value)),
        (study_id, lambda value: Organization.studies.any(
            (Study.id == value) & studies.visible(identity))),
    ])


def get_organization(*, session: Session, identity: Identity, organization_id: int) -> Organization:
    """One organization, if visible.

    Raises:
        NotFoundError: no such organization.
        ForbiddenError: not visible to the caller.
    """
    return ORGANIZATIONS.get(session=session, identity=identity, object_id=organization_id)


def _decode_public_key(value: str | None) -> bytes | None:
    """The PEM bytes of an API ``public_key`` (base64 of an RSA SubjectPublicKeyInfo PEM).

    A key that no client or node could encrypt with is refused here, not at the first task.
    """
    if not value:
        return None
    try:
        public_key_from_wire(value)
    except InvalidKey as exc:
        raise BadRequestError(f"public_key must be the base64 encoding of a PEM RSA public "
                              f"key: {exc}") from exc
    return b64decode(value.encode("ascii"), validate=True)


def _name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    existing = session.scalar(select(Organization).where(Organization.name == name))
    if existing is not None and existing.id != except_id:
        raise BadRequestError(f"Organization with name '{name}' already exists!")


def create_organization(*, session: Session, identity: Identity,
                        data: OrganizationCreate) -> Organization:
    """Create an organization (needs organization CREATE, global).

    Raises:
        ForbiddenError: missing permission.
        BadRequestError: name taken or bad public key.
    """
    if not identity.can(Resource.ORGANIZATION, Operation.CREATE, Scope.GLOBAL):
        raise ForbiddenError(NO_PERMISSION)
    _name_free(session, data.name)
    org = Organization(
        name=data.name, domain=data.domain, address1=data.address1, address2=data.address2,
        zipcode=data.zipcode, country=data.country,
        public_key=_decode_public_key(data.public_key),
    )
    session.add(org)
    session.flush()
    return org


def update_organization(*, session: Session, identity: Identity, organization_id: int,
                        data: OrganizationUpdate) -> Organization:
    """Change the fields present in ``data`` (organization EDIT at a covering scope).

    Raises:
        NotFoundError, ForbiddenError, BadRequestError.
    """
    org = get_or_404(session, Organization, organization_id, "Organization")
    if not reaches(identity, Resource.ORGANIZATION, Operation.EDIT,
                   collaboration_ids=[c.id for c in org.collaborations],
                   organization_ids=[org.id]):
        raise ForbiddenError(NO_PERMISSION)
    present = data.model_fields_set
    if data.name is not None:
        _name_free(session, data.name, except_id=org.id)
        org.name = data.name
    if "domain" in present:
        org.domain = data.domain
    if "address1" in present:
        org.address1 = data.address1
    if "address2" in present:
        org.address2 = data.address2
    if "zipcode" in present:
        org.zipcode = data.zipcode
    if "country" in present:
        org.country = data.country
    if "public_key" in present:
        org.public_key = _decode_public_key(data.public_key)
    session.flush()
    return org
