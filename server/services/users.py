"""Users: visibility and creation (with roles and rules the creator holds)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from server.auth.passwords import hash_password
from server.auth.permissions import Operation, Resource, Scope, rule_key
from server.auth.principals import Identity, UserIdentity
from server.db.models import Organization, Role, Rule, User, member_table
from server.errors import BadRequestError, ForbiddenError
from server.services import audit
from server.services.audit import AuditEvent
from server.services.common import get_or_404
from server.services.organizations import NO_PERMISSION
from v6flow.schemas import UserCreate


def _visible(identity: Identity) -> ColumnElement[bool]:
    scope = identity.scope(Resource.USER, Operation.VIEW)
    if scope is Scope.GLOBAL:
        return true()
    if scope is Scope.COLLABORATION:
        shared = select(member_table.c.organization_id).where(
            member_table.c.collaboration_id.in_(identity.collaboration_ids))
        return (User.organization_id == identity.organization_id) | User.organization_id.in_(shared)
    if scope is Scope.ORGANIZATION:
        return User.organization_id == identity.organization_id
    if isinstance(identity, UserIdentity):  # everyone sees themselves (UserClient reads it)
        return User.id == identity.user_id
    raise ForbiddenError(NO_PERMISSION)


def list_users(*, identity: Identity, organization_id: int | None = None,
               username: str | None = None, firstname: str | None = None,
               lastname: str | None = None, email: str | None = None) -> Select[User]:
    """Query of the visible users, filtered."""
    stmt = select(User).where(_visible(identity)).order_by(User.id)
    if organization_id is not None:
        stmt = stmt.where(User.organization_id == organization_id)
    if username is not None:
        stmt = stmt.where(User.username.like(username))
    if firstname is not None:
        stmt = stmt.where(User.firstname.like(firstname))
    if lastname is not None:
        stmt = stmt.where(User.lastname.like(lastname))
    if email is not None:
        stmt = stmt.where(User.email.like(email))
    return stmt


def get_user(*, session: Session, identity: Identity, user_id: int) -> User:
    """One visible user.

    Raises:
        NotFoundError, ForbiddenError.
    """
    user = get_or_404(session, User, user_id, "User")
    if session.scalar(select(User.id).where(User.id == user.id, _visible(identity))) is None:
        raise ForbiddenError(NO_PERMISSION)
    return user


def create_user(*, session: Session, identity: Identity, data: UserCreate) -> User:
    """Create a user in an organization the creator manages, with rules the creator holds.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (username/email taken, unknown role/rule).
    """
    org_id = data.organization_id if data.organization_id is not None else identity.organization_id
    org = get_or_404(session, Organization, org_id, "Organization")
    shared = {c.id for c in org.collaborations} & identity.collaboration_ids
    needed = (Scope.ORGANIZATION if org.id == identity.organization_id
              else Scope.COLLABORATION if shared else Scope.GLOBAL)
    if not identity.can(Resource.USER, Operation.CREATE, needed):
        raise ForbiddenError(NO_PERMISSION)
    if session.scalar(select(User).where(User.username == data.username)):
        raise BadRequestError(f"User with username '{data.username}' already exists!")
    if data.email and session.scalar(select(User).where(User.email == data.email)):
        raise BadRequestError(f"User with email '{data.email}' already exists!")
    roles = [session.get(Role, rid) for rid in dict.fromkeys(data.roles)]
    rules = [session.get(Rule, rid) for rid in dict.fromkeys(data.rules)]
    if any(r is None for r in roles) or any(r is None for r in rules):
        raise BadRequestError("Unknown role or rule id")
    granted = [rule for role in roles if role for rule in role.rules] + [r for r in rules if r]
    for row in granted:
        key = rule_key(row.name, row.operation, row.scope)
        if key is None or key not in identity.rules:
            raise ForbiddenError("You cannot assign rules that you do not have yourself")
    user = User(username=data.username, password_hash=hash_password(data.password),
                firstname=data.firstname, lastname=data.lastname, email=data.email,
                organization_id=org.id, failed_login_attempts=0,
                roles=[r for r in roles if r], rules=[r for r in rules if r])
    session.add(user)
    session.flush()
    audit.record(session, event=AuditEvent.USER_CREATED, actor=identity, target=("user", user.id),
                 organization_id=org.id, role_ids=[r.id for r in user.roles],
                 rule_ids=[r.id for r in user.rules])
    return user
