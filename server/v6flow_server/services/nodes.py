"""Nodes: visibility, registration (API key shown once), edits, deletion and presence.

Rules (node resource, as v4): VIEW/EDIT/DELETE at global scope reach every node, at
collaboration scope the nodes of the caller's collaborations and organization, at
organization scope the nodes of the caller's organization. A node itself (node EDIT,
organization scope) may edit only itself, not its organization's other nodes.

Deleting a node revokes it at once: its API key is gone with the row, and every token it
holds names a node that no longer exists, so its next request is 401.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from v6flow.schemas import NodeCreate, NodeUpdate
from v6flow.wire import format_datetime
from v6flow_server.auth.passwords import hash_api_key
from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import Identity, NodeIdentity
from v6flow_server.db.models import Collaboration, Node, Organization, Study
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.events import EventName, Outbox
from v6flow_server.services import audit, studies
from v6flow_server.services.audit import AuditEvent
from v6flow_server.services.common import get_or_404
from v6flow_server.services.reach import Reach, narrowest, scope_reach
from v6flow_server.services.scope import reaches
from v6flow_server.services.visibility import NO_PERMISSION

ONLINE, OFFLINE = "online", "offline"


def node_reach(identity: Identity, *, cap: Scope = Scope.GLOBAL) -> Reach | None:
    """What ``identity`` may see of nodes (None: nothing), at most as far as ``cap``.

    The one node visibility rule: REST reads through :func:`_visible`, the event stream
    (``node_status``) through :meth:`Reach.allows`. A node's organization is its own; a node
    of an organization is always in that organization's collaborations (a member with a node
    cannot leave), so the collaboration scope needs no "or my organization".
    """
    return scope_reach(identity, narrowest(identity.scope(Resource.NODE, Operation.VIEW), cap))


def _visible(identity: Identity) -> ColumnElement[bool]:
    reach = node_reach(identity)
    if reach is None:
        raise ForbiddenError(NO_PERMISSION)
    return reach.condition(collaboration_id=Node.collaboration_id,
                           organization_id=Node.organization_id)


def _in_study(study_id: int, identity: Identity) -> ColumnElement[bool]:
    """Nodes of a study's organizations in its collaboration (a study the caller may see)."""
    return select(Study.id).where(
        Study.id == study_id, Study.collaboration_id == Node.collaboration_id,
        Study.organizations.any(Organization.id == Node.organization_id),
        studies.visible(identity)).exists()


def list_nodes(*, identity: Identity, name: str | None = None,
               organization_id: int | None = None, collaboration_id: int | None = None,
               status: str | None = None, ip: str | None = None,
               study_id: int | None = None) -> Select[Node]:
    """Query of the visible nodes, filtered (``study_id``: only a study the caller sees).

    Raises:
        ForbiddenError: no node VIEW rule, or ``study_id`` without a study VIEW rule.
    """
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
    if study_id is not None:
        stmt = stmt.where(_in_study(study_id, identity))
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


def _may(identity: Identity, operation: Operation, node: Node) -> bool:
    if isinstance(identity, NodeIdentity) and identity.node_id != node.id:
        return False
    return reaches(identity, Resource.NODE, operation, collaboration_ids=[node.collaboration_id],
                   organization_ids=[node.organization_id])


def update_node(*, session: Session, identity: Identity, node_id: int,
                data: NodeUpdate) -> Node:
    """Rename a node, set or clear its VPN address (``ip`` wins over ``clear_ip``).

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (name taken).
    """
    node = get_or_404(session, Node, node_id, "Node")
    if not _may(identity, Operation.EDIT, node):
        raise ForbiddenError(NO_PERMISSION)
    if data.name is not None and data.name != node.name:
        if session.scalar(select(Node.id).where(Node.name == data.name)) is not None:
            raise BadRequestError(f"Node name '{data.name}' already exists!")
        node.name = data.name
    if data.ip is not None:
        node.ip = data.ip
    elif data.clear_ip:
        node.ip = None
    session.flush()
    return node


def delete_node_rows(session: Session, nodes: Iterable[Node]) -> None:
    """Delete nodes (no permission check: the caller's service did it). Their API keys and
    tokens stop working at once (see the module doc); their runs stay."""
    for node in nodes:
        session.delete(node)
    session.flush()


def delete_node(*, session: Session, identity: Identity, node_id: int) -> None:
    """Delete a node; it is revoked at once.

    Raises:
        NotFoundError, ForbiddenError.
    """
    node = get_or_404(session, Node, node_id, "Node")
    if not _may(identity, Operation.DELETE, node):
        raise ForbiddenError(NO_PERMISSION)
    audit.record(session, event=AuditEvent.NODE_DELETED, actor=identity,
                 target=("node", node.id))
    delete_node_rows(session, [node])


def node_status_event(outbox: Outbox, node: Node) -> None:
    """Queue ``node_status`` for ``node`` (published after the commit)."""
    outbox.emit(EventName.NODE_STATUS, collaboration_id=node.collaboration_id, id=node.id,
                status=node.status, organization_id=node.organization_id,
                last_seen=format_datetime(node.last_seen) if node.last_seen else None)
