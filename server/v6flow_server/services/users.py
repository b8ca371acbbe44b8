"""Users: visibility, creation, edits and deletion.

Who may act on whom:
- everyone reads, edits and deletes their own account with the ``user`` OWN rules (the
  Viewer role holds them, as in v4), but nobody changes their own roles or rules;
- admins act on the users in their reach: their organization, the organizations of their
  collaborations, or all (:func:`~v6flow_server.services.access.scope_to_reach`);
- nobody edits or deletes another user who holds a rule the caller does not hold (so an
  organization admin cannot take over a more powerful account by changing its email), and
  nobody hands out or takes away a rule they do not hold
  (:func:`~v6flow_server.services.access.require_held`);
- the last user holding the Root role is never deleted or demoted (400).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from v6flow.schemas import UserCreate, UserUpdate
from v6flow_server.auth.password_policy import DEFAULT_PASSWORD_POLICY, PasswordPolicy
from v6flow_server.auth.passwords import hash_password
from v6flow_server.auth.permissions import ROOT_ROLE, Operation, Resource, Scope
from v6flow_server.auth.principals import Identity, UserIdentity
from v6flow_server.db.models import (
    Organization,
    RetiredAccount,
    Role,
    Rule,
    Task,
    User,
    member_table,
    user_role_table,
)
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.events import Outbox
from v6flow_server.services import audit, tasks
from v6flow_server.services.access import (
    ROLES,
    USERS,
    require_held,
    require_scope,
    rows_by_id,
    rules_of,
    scope_to_reach,
)
from v6flow_server.services.audit import AuditEvent
from v6flow_server.services.common import get_or_404


def list_users(*, session: Session, identity: Identity, organization_id: int | None = None,
               collaboration_id: int | None = None, username: str | None = None,
               firstname: str | None = None, lastname: str | None = None,
               email: str | None = None, role_id: int | None = None,
               rule_id: int | None = None, last_seen_from: date | None = None,
               last_seen_till: date | None = None) -> Select[User]:
    """Query of the visible users, filtered.

    ``role_id`` answers only for a role the caller may see; ``rule_id`` selects the users who
    hold the rule, directly or through a role; ``last_seen_till`` includes that whole day.

    Raises:
        NotFoundError, ForbiddenError: ``role_id`` names an unknown or invisible role.
    """
    if role_id is not None:
        ROLES.get(session=session, identity=identity, object_id=role_id)
    return USERS.query(identity, [
        (organization_id, lambda v: User.organization_id == v),
        (collaboration_id, lambda v: User.organization_id.in_(select(
            member_table.c.organization_id).where(member_table.c.collaboration_id == v))),
        (username, User.username.like),
        (firstname, User.firstname.like),
        (lastname, User.lastname.like),
        (email, User.email.like),
        (role_id, lambda v: User.roles.any(Role.id == v)),
        (rule_id, lambda v: User.rules.any(Rule.id == v)
         | User.roles.any(Role.rules.any(Rule.id == v))),
        (last_seen_from, lambda v: User.last_seen >= datetime.combine(v, time())),
        (last_seen_till,
         lambda v: User.last_seen < datetime.combine(v + timedelta(days=1), time())),
    ])


def get_user(*, session: Session, identity: Identity, user_id: int) -> User:
    """One visible user.

    Raises:
        NotFoundError, ForbiddenError.
    """
    return USERS.get(session=session, identity=identity, object_id=user_id)


def _require_unique(session: Session, *, username: str | None = None,
                    email: str | None = None, except_id: int | None = None) -> None:
    others = select(User.id) if except_id is None else select(User.id).where(
        User.id != except_id)
    if username and session.scalar(others.where(User.username == username).limit(1)):
        raise BadRequestError(f"User with username '{username}' already exists!")
    if email and session.scalar(
            others.where(func.lower(User.email) == email.lower()).limit(1)):
        raise BadRequestError(f"User with email '{email}' already exists!")


def _require_roles_fit(roles: list[Role], organization_id: int) -> None:
    """A user holds global roles and the roles of their own organization only."""
    for role in roles:
        if role.organization_id is not None and role.organization_id != organization_id:
            raise BadRequestError(f"Role '{role.name}' (id={role.id}) belongs to another "
                                  "organization than the user")


def create_user(*, session: Session, identity: Identity, data: UserCreate,
                password_policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY) -> User:
    """Create a user in an organization the creator manages, with rules the creator holds.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (username/email taken, unknown role/rule,
        a role of another organization, a password the policy refuses).
    """
    org_id = data.organization_id if data.organization_id is not None else identity.organization_id
    org = get_or_404(session, Organization, org_id, "Organization")
    require_scope(identity, Resource.USER, Operation.CREATE,
                  scope_to_reach(session, identity, org.id))
    password_policy.check(data.password, username=data.username)
    _require_unique(session, username=data.username, email=data.email)
    roles = rows_by_id(session, Role, data.roles, "Role")
    rules = rows_by_id(session, Rule, data.rules, "Rule")
    require_held(identity, rules_of(roles, rules))
    _require_roles_fit(roles, org.id)
    user = User(username=data.username, password_hash=hash_password(data.password),
                firstname=data.firstname, lastname=data.lastname, email=data.email,
                organization_id=org.id, failed_login_attempts=0,
                roles=roles, rules=rules)
    session.add(user)
    session.flush()
    audit.record(session, event=AuditEvent.USER_CREATED, actor=identity, target=("user", user.id),
                 organization_id=org.id, role_ids=[r.id for r in user.roles],
                 rule_ids=[r.id for r in user.rules])
    return user


def _require_reach(session: Session, identity: UserIdentity, user: User,
                   operation: Operation) -> None:
    """The caller may ``operation`` (EDIT/DELETE) this user: themselves, or one in reach
    who holds no rule the caller lacks."""
    if user.id == identity.user_id:
        require_scope(identity, Resource.USER, operation, Scope.OWN)
        return
    require_scope(identity, Resource.USER, operation,
                  scope_to_reach(session, identity, user.organization_id))
    require_held(identity, rules_of(user.roles, user.rules),
                 "You cannot edit or delete a user who holds rules that you do not have")


def _keep_a_root_holder(session: Session, user: User, losing: Iterable[Role]) -> None:
    """Refuse to take Root from its last holder (the Root role row is locked meanwhile)."""
    root = session.scalar(select(Role).where(
        Role.name == ROOT_ROLE, Role.organization_id.is_(None)).with_for_update())
    if root is None or root not in set(losing):
        return
    others = session.scalar(select(func.count()).select_from(user_role_table).where(
        user_role_table.c.role_id == root.id, user_role_table.c.user_id != user.id))
    if not others:
        raise BadRequestError(f"User id={user.id} is the last user holding the {ROOT_ROLE} "
                              f"role; give {ROOT_ROLE} to another user first")


def update_user(*, session: Session, identity: UserIdentity, user_id: int,
                data: UserUpdate) -> User:
    """Change a user's names, email, organization, roles or rules (only the fields sent).

    Raises:
        NotFoundError: no such user or organization.
        ForbiddenError: out of reach, one's own roles/rules, rules the caller does not hold,
            or an organization change without the global user EDIT rule.
        BadRequestError: username/email taken, another user's username, unknown role/rule,
            a role of another organization, Root taken from its last holder.
    """
    user = get_or_404(session, User, user_id, "User")
    _require_reach(session, identity, user, Operation.EDIT)
    myself = user.id == identity.user_id
    if data.username is not None and data.username != user.username:
        if not myself:
            raise BadRequestError("You cannot change the username of another user")
        _require_unique(session, username=data.username, except_id=user.id)
    if data.email is not None:
        _require_unique(session, email=data.email, except_id=user.id)
    org_id = user.organization_id
    if data.organization_id is not None and data.organization_id != org_id:
        require_scope(identity, Resource.USER, Operation.EDIT, Scope.GLOBAL)
        org_id = get_or_404(session, Organization, data.organization_id, "Organization").id
    roles = (list(user.roles) if data.roles is None
             else rows_by_id(session, Role, data.roles, "Role"))
    rules = (list(user.rules) if data.rules is None
             else rows_by_id(session, Rule, data.rules, "Rule"))
    changed_roles = set(roles) ^ set(user.roles)
    changed_rules = set(rules) ^ set(user.rules)
    if changed_roles or changed_rules:
        if myself:
            raise ForbiddenError("You cannot change your own roles or rules")
        require_held(identity, rules_of(changed_roles, changed_rules))
    _require_roles_fit(roles, org_id)
    if changed_roles:
        _keep_a_root_holder(session, user, set(user.roles) - set(roles))
    if changed_roles or changed_rules:
        audit.record(session, event=AuditEvent.USER_ROLES_CHANGED, actor=identity,
                     target=("user", user.id), role_ids=sorted(r.id for r in roles),
                     rule_ids=sorted(r.id for r in rules))
    changed = [name for name in ("username", "firstname", "lastname", "email")
               if getattr(data, name) is not None and getattr(data, name) != getattr(user, name)]
    if org_id != user.organization_id:
        changed.append("organization_id")
    if changed:  # the names of the fields, never their values
        audit.record(session, event=AuditEvent.USER_UPDATED, actor=identity,
                     target=("user", user.id), fields=", ".join(changed))
    for name in ("username", "firstname", "lastname", "email"):
        value = getattr(data, name)
        if value is not None:
            setattr(user, name, value)
    user.organization_id = org_id
    user.roles, user.rules = roles, rules
    session.flush()
    return user


def delete_user(*, session: Session, identity: UserIdentity, user_id: int,
                delete_dependents: bool, outbox: Outbox) -> None:
    """Delete a user; their tasks go too only when ``delete_dependents`` (v4). The id stays
    taken by a :class:`~v6flow_server.db.models.RetiredAccount`.

    Raises:
        NotFoundError, ForbiddenError (out of reach, or tasks the caller may not delete),
        BadRequestError (the user created tasks, or is the last Root holder).
    """
    user = get_or_404(session, User, user_id, "User")
    _require_reach(session, identity, user, Operation.DELETE)
    _keep_a_root_holder(session, user, user.roles)
    task_ids = list(session.scalars(
        select(Task.id).where(Task.init_user_id == user.id).order_by(Task.id)))
    if task_ids and not delete_dependents:
        raise BadRequestError(
            f"User has created {len(task_ids)} tasks. Delete those first, or set "
            "delete_dependents=true to delete them together with this user")
    for task_id in task_ids:
        if session.get(Task, task_id) is not None:  # not gone with a parent task already
            tasks.delete_task(session=session, identity=identity, task_id=task_id,
                              outbox=outbox)
    audit.record(session, event=AuditEvent.USER_DELETED, actor=identity,
                 target=("user", user.id))
    session.delete(user)
    session.flush()
    session.add(RetiredAccount(id=user_id))  # the id is never handed out again
    session.flush()
