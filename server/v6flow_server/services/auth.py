"""Node logins, token refresh, container tokens and resolving a bearer token into an identity.

User logins (password, lockout, second factor) live in :mod:`v6flow_server.services.accounts`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, String, bindparam, literal, null, select, union_all
from sqlalchemy.orm import Session

from v6flow.schemas import MAX_ID
from v6flow.status import RunStatus
from v6flow.wire import utcnow
from v6flow_server.auth.passwords import hash_api_key
from v6flow_server.auth.permissions import CONTAINER_RULES, NODE_RULES, RuleKey, rule_key
from v6flow_server.auth.principals import (
    ClientType,
    ContainerIdentity,
    Identity,
    NodeIdentity,
    UserIdentity,
)
from v6flow_server.auth.tokens import TokenIssuer, TokenPair, TokenType
from v6flow_server.db.models import (
    Node,
    Rule,
    Run,
    Task,
    User,
    member_table,
    role_rule_table,
    user_role_table,
    user_rule_table,
)
from v6flow_server.errors import (
    BadRequestError,
    ForbiddenError,
    ServerDomainError,
    UnauthorizedError,
)
from v6flow_server.services import audit
from v6flow_server.services.audit import AuditEvent
from v6flow_server.services.task_state import task_is_finished

CONTAINER_TOKEN_INVALID = "Container-token is not valid"  # noqa: S105 - a message
#: The tables themselves (a select of ``User.x`` would join the ``authenticatable`` parent).
_USERS = User.__table__
_NODES = Node.__table__


def login_node(*, session: Session, issuer: TokenIssuer, api_key: str) -> tuple[Node, TokenPair]:
    """Find the node by its API key and hand out a token pair.

    Raises:
        UnauthorizedError: no node has this key.
    """
    node = session.scalar(select(Node).where(Node.api_key_hash == hash_api_key(api_key)))
    if node is None:
        raise UnauthorizedError("Api key is not recognized!")
    node.last_seen = utcnow()
    return node, issuer.issue_pair(subject_id=node.id, client_type=ClientType.NODE)


def refresh_tokens(*, session: Session, issuer: TokenIssuer,
                   refresh_token: str) -> tuple[ClientType, int, TokenPair]:
    """Exchange a valid refresh token of an existing user or node for a new pair.

    Raises:
        UnauthorizedError: bad/expired token or the subject no longer exists.
    """
    claims = issuer.decode(refresh_token, expected_type=TokenType.REFRESH)
    client_type, subject = claims.get("client_type"), _row_id(claims.get("sub"))
    if client_type == ClientType.USER and subject is not None:
        user = session.get(User, subject)
        if user is not None:
            roles = [role.name for role in user.roles]
            return ClientType.USER, subject, issuer.issue_pair(
                subject_id=subject, client_type=ClientType.USER, roles=roles)
    if client_type == ClientType.NODE and subject is not None and session.get(Node, subject):
        return ClientType.NODE, subject, issuer.issue_pair(
            subject_id=subject, client_type=ClientType.NODE)
    raise UnauthorizedError("Invalid refresh token")


def database_claims(task: Task) -> list[dict[str, Any]]:
    """The task's databases as the container token carries them: ``params | {"label"}``."""
    claims = []
    for database in task.databases:
        params = json.loads(database.parameters or "{}")
        claims.append({**params, "label": database.database})
    return claims


#: Statuses of a run that is being started or is running: the only ones a token is issued for.
RUNNING = frozenset({RunStatus.INITIALIZING.value, RunStatus.ACTIVE.value})


def _held_run(session: Session, node: NodeIdentity, task: Task) -> Run:
    """The run of ``task`` this node holds (its organization's) and has started, not finished.

    "Started" is the node's own report: status ``initializing`` or ``active`` (v6flow's node
    PATCHes ``initializing`` before it asks for a token), or a pending run whose
    ``started_at`` is set (the v4 node PATCHes only ``started_at`` first, CONTRACT §4.4).

    Raises:
        ForbiddenError: the node's organization has no run in this task.
        BadRequestError: that run has not been started, or has finished.
    """
    run = session.scalar(select(Run).where(Run.task_id == task.id,
                                           Run.organization_id == node.organization_id))
    if run is None:
        raise ForbiddenError(f"Node id={node.node_id} holds no run of task id={task.id}")
    if run.finished_at is not None or RunStatus(run.status).is_finished:
        raise BadRequestError(f"Run id={run.id} is already finished")
    started = run.status in RUNNING or run.started_at is not None
    if not started:
        raise BadRequestError(
            f"Run id={run.id} has not been started: PATCH its status to 'initializing' "
            "before asking for a container token")
    return run


def container_token(*, session: Session, issuer: TokenIssuer, node: NodeIdentity,
                    task_id: int, image: str, lifetime: timedelta) -> str:
    """Token for the container a node is about to start for its run of ``task_id``.

    Issued only for a run this node holds (its organization's run of the task) that it has
    started and that is not finished. The token is bound to that run (``run_id`` in ``sub``):
    it dies when the run finishes, and at the latest after ``lifetime`` (``exp``; v4's
    container tokens never expire). Every issue and refusal is audited; a refusal in its
    own transaction, since the request's is rolled back.

    Raises:
        BadRequestError: the task does not exist or is finished; the run is not started or
            is finished.
        UnauthorizedError: wrong image, or the node is not in the task's collaboration.
        ForbiddenError: the node holds no run of the task.
    """
    try:
        task = session.get(Task, task_id)
        if task is None:
            raise BadRequestError(f"Task id={task_id} does not exist!")
        if image != task.image:
            raise UnauthorizedError("Image does not match the task's image")
        if node.collaboration_id != task.collaboration_id:
            raise UnauthorizedError("Node is not in the task's collaboration")
        if task_is_finished(task):
            raise BadRequestError("Task is already finished!")
        run = _held_run(session, node, task)
    except ServerDomainError as exc:
        audit.record(session, event=AuditEvent.CONTAINER_TOKEN_REFUSED, actor=node,
                     target=("task", task_id), own_transaction=True, reason=exc.msg)
        raise
    sub = {
        "client_type": ClientType.CONTAINER.value,
        "node_id": node.node_id,
        "organization_id": node.organization_id,
        "collaboration_id": task.collaboration_id,
        "study_id": task.study_id,
        "store_id": task.algorithm_store_id,
        "task_id": task.id,
        "run_id": run.id,
        "image": task.image,
        "databases": database_claims(task),
    }
    audit.record(session, event=AuditEvent.CONTAINER_TOKEN_ISSUED, actor=node,
                 target=("run", run.id), task_id=task.id)
    return issuer.issue_container(sub, lifetime=lifetime)


def _row_id(value: Any) -> int | None:
    """``value`` when it can be a row id (an int within 1..MAX_ID), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    return None


def _user_query() -> Any:
    """The one query of :func:`_user_identity` (``:subject``: the user's id)."""
    subject = bindparam("subject", type_=Integer)
    no_id, no_text = null().cast(Integer), null().cast(String)
    user = (select(literal(0).label("kind"), _USERS.c.organization_id,
                   member_table.c.collaboration_id, _USERS.c.username, no_text, no_text)
            .select_from(_USERS.outerjoin(
                member_table, member_table.c.organization_id == _USERS.c.organization_id))
            .where(_USERS.c.id == subject))
    by_role = (select(literal(1), no_id, no_id, Rule.name, Rule.operation, Rule.scope)
               .join(role_rule_table, role_rule_table.c.rule_id == Rule.id)
               .join(user_role_table, user_role_table.c.role_id == role_rule_table.c.role_id)
               .where(user_role_table.c.user_id == subject))
    own = (select(literal(1), no_id, no_id, Rule.name, Rule.operation, Rule.scope)
           .join(user_rule_table, user_rule_table.c.rule_id == Rule.id)
           .where(user_rule_table.c.user_id == subject))
    return union_all(user, by_role, own)


#: Built once: SQLAlchemy then finds its compiled form without re-deriving its cache key.
_USER_QUERY = _user_query()
_NODE_QUERY = (select(_NODES.c.organization_id, _NODES.c.collaboration_id)
               .where(_NODES.c.id == bindparam("subject", type_=Integer)))


def _user_identity(session: Session, subject: Any) -> UserIdentity:
    """Who a user token belongs to, in one query (no ORM objects).

    This runs on every request of a user: its row with the collaborations of its
    organization (``kind`` 0), and the rules of its roles and its own rules (``kind`` 1).
    """
    subject = _row_id(subject)
    if subject is None:
        raise UnauthorizedError("User does not exist (anymore)")
    rows = session.execute(_USER_QUERY, {"subject": subject}).all()
    users = [row for row in rows if row[0] == 0]
    if not users:
        raise UnauthorizedError("User does not exist (anymore)")
    organization_id, username = users[0][1], users[0][3]
    rules: frozenset[RuleKey] = frozenset(
        key for kind, _, _, name, operation, scope in rows
        if kind == 1 and (key := rule_key(name, operation, scope)) is not None
    )
    return UserIdentity(
        client_type=ClientType.USER, organization_id=organization_id,
        collaboration_ids=frozenset(row[2] for row in users if row[2] is not None),
        rules=rules, user_id=subject, username=username,
    )


def _node_identity(session: Session, subject: Any) -> NodeIdentity:
    subject = _row_id(subject)
    row = session.execute(_NODE_QUERY, {"subject": subject}).first() \
        if subject is not None else None
    if row is None or subject is None:
        raise UnauthorizedError("Node does not exist (anymore)")
    organization_id, collaboration_id = row
    return NodeIdentity(
        client_type=ClientType.NODE, organization_id=organization_id,
        collaboration_ids=frozenset({collaboration_id}), rules=NODE_RULES,
        node_id=subject, collaboration_id=collaboration_id,
    )


def _container_identity(session: Session, subject: Any) -> ContainerIdentity:
    """The container of a live run: the token names its run, which must not be finished.

    Tokens without ``run_id`` (issued before runs were bound, or v4-style) are refused.
    """
    if not isinstance(subject, dict):
        raise UnauthorizedError(CONTAINER_TOKEN_INVALID)
    try:
        node_id, task_id = int(subject["node_id"]), int(subject["task_id"])
        run_id, collaboration_id = int(subject["run_id"]), int(subject["collaboration_id"])
        organization_id, image = int(subject["organization_id"]), str(subject["image"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UnauthorizedError(CONTAINER_TOKEN_INVALID) from exc
    if None in (_row_id(node_id), _row_id(task_id), _row_id(run_id), _row_id(collaboration_id)):
        raise UnauthorizedError(CONTAINER_TOKEN_INVALID)
    row = session.execute(  # the run with its task, and the node (one query)
        select(Run.task_id, Run.organization_id, Run.finished_at, Run.status,
               Task.collaboration_id, Task.job_id, _NODES.c.organization_id,
               _NODES.c.collaboration_id)
        .join(Task, Task.id == Run.task_id).join(_NODES, _NODES.c.id == node_id)
        .where(Run.id == run_id)).first()
    if row is None:
        raise UnauthorizedError(CONTAINER_TOKEN_INVALID)
    (run_task, run_org, finished_at, status, task_collaboration, job_id, node_org,
     node_collaboration) = row
    if (run_task != task_id or run_org != organization_id or node_org != organization_id
            or node_collaboration != collaboration_id
            or task_collaboration != collaboration_id):
        raise UnauthorizedError(CONTAINER_TOKEN_INVALID)
    if finished_at is not None or RunStatus(status).is_finished:
        raise UnauthorizedError("Container-token is not valid: its run is finished")
    return ContainerIdentity(
        client_type=ClientType.CONTAINER, organization_id=organization_id,
        collaboration_ids=frozenset({collaboration_id}), rules=CONTAINER_RULES,
        node_id=node_id, collaboration_id=collaboration_id, task_id=task_id,
        job_id=job_id, image=image,
        study_id=subject.get("study_id"), store_id=subject.get("store_id"),
        databases=list(subject.get("databases") or []),
    )


def resolve_identity(*, session: Session, issuer: TokenIssuer, token: str) -> Identity:
    """Verify an access token and load who it belongs to.

    Raises:
        UnauthorizedError: invalid/expired token, unknown subject, or a dead container token.
    """
    claims = issuer.decode(token, expected_type=TokenType.ACCESS)
    client_type, subject = claims.get("client_type"), claims.get("sub")
    if client_type == ClientType.USER:
        return _user_identity(session, subject)
    if client_type == ClientType.NODE:
        return _node_identity(session, subject)
    if client_type == ClientType.CONTAINER:
        return _container_identity(session, subject)
    raise UnauthorizedError("Unknown client type in token")

