"""Nodes: visibility, registration (API key shown once) and online presence."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from server.auth.passwords import hash_api_key
from server.auth.permissions import Operation, Resource, Scope
from server.auth.principals import Identity
from server.db.models import Collaboration, Node, Organization
from server.errors import BadRequestError, ForbiddenError
from server.services import audit
from server.services.audit import AuditEvent
from server.services.common import get_or_404
from server.services.organizations import NO_PERMISSION
from v6flow.schemas import NodeCreate
from v6flow.wire import utcnow

ONLINE, OFFLINE = "online", "offline"


def _visible(identity: Identity) -> ColumnElement[bool]:
    scope = identity.scope(Resource.NODE, Operation.VIEW)
    if scope is Scope.GLOBAL:
        return true()
    if scope is Scope.COLLABORATION:
        return Node.collaboration_id.in_(identity.collaboration_ids) | (
            Node.organization_id == identity.organization_id)
    if scope is not None:
        return Node.organization_id == identity.organization_id
    raise ForbiddenError(NO_PERMISSION)


def list_nodes(*, identity: Identity, name: str | None = None,
               organization_id: int | None = None, collaboration_id: int | None = None,
               status: str | None = None, ip: str | None = None) -> Select[Node]:
    """Query of the visible nodes, filtered."""
    stmt = select(Node).where(_visible(identity)).order_by(Node.id)
    if name is not None:
        stmt = stmt.where(Node.name.like(name))
    if organization_id is not None:
        stmt = stmt.where(Node.organization_id == organization_id)
    if collaboration_id is not None:
        stmt = stmt.where(Node.collaboration_id == collaboration_id)
    if status is not None:
        stmt = stmt.where(Node.status == status)
    if ip is not None:
        stmt = stmt.where(Node.ip == ip)
    return stmt


def get_node(*, session: Session, identity: Identity, node_id: int) -> Node:
    """One visible node.

    Raises:
        NotFoundError, ForbiddenError.
    """
    node = get_or_404(session, Node, node_id, "Node")
    if session.scalar(select(Node.id).where(Node.id == node.id, _visible(identity))) is None:
        raise ForbiddenError(NO_PERMISSION)
    return node


def create_node(*, session: Session, identity: Identity, data: NodeCreate) -> tuple[Node, str]:
    """Register the node of one organization in one collaboration.

    Returns:
        The node and its plaintext API key (stored only as a hash, shown once).

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (org not in collaboration, node exists,
        name taken).
    """
    collab = get_or_404(session, Collaboration, data.collaboration_id, "Collaboration")
    org_id = data.organization_id if data.organization_id is not None else identity.organization_id
    org = get_or_404(session, Organization, org_id, "Organization")
    needed = (Scope.ORGANIZATION if org.id == identity.organization_id
              else Scope.COLLABORATION if collab.id in identity.collaboration_ids
              else Scope.GLOBAL)
    if not identity.can(Resource.NODE, Operation.CREATE, needed):
        raise ForbiddenError(NO_PERMISSION)
    if org not in collab.organizations:
        raise BadRequestError(
            f"Organization id={org.id} is not part of collaboration id={collab.id}")
    if session.scalar(select(Node).where(Node.organization_id == org.id,
                                         Node.collaboration_id == collab.id)):
        raise BadRequestError(
            f"Organization id={org.id} already has a node in collaboration id={collab.id}")
    name = data.name or f"{collab.name} - {org.name} Node"
    if session.scalar(select(Node).where(Node.name == name)):
        raise BadRequestError(f"Node name '{name}' already exists!")
    api_key = str(uuid.uuid4())
    node = Node(name=name, api_key_hash=hash_api_key(api_key), organization_id=org.id,
                collaboration_id=collab.id)
    session.add(node)
    session.flush()
    audit.record(session, event=AuditEvent.NODE_CREATED, actor=identity, target=("node", node.id),
                 organization_id=org.id, collaboration_id=collab.id)
    return node, api_key


def set_presence(*, session: Session, node_id: int, online: bool, ip: str | None = None) -> None:
    """Mark a node online (stream connected) or offline, and touch ``last_seen``."""
    node = session.get(Node, node_id)
    if node is None:
        return
    node.status = ONLINE if online else OFFLINE
    node.last_seen = utcnow()
    if ip is not None:
        node.ip = ip
