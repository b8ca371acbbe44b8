"""Who may reach which users and roles, and which rules a caller may hand out.

Shared by :mod:`v6flow_server.services.users` and :mod:`v6flow_server.services.roles` (each of
them needs the other's visibility: ``GET /role?user_id=`` and ``GET /user?role_id=``), so it
lives here.

- :data:`USERS` / :data:`ROLES`: the rows an identity may see (:class:`Visibility`).
- :func:`scope_to_reach`: the narrowest rule scope that reaches an organization.
- :func:`require_held`: **the** grant check. Nobody hands out or takes away a rule they do
  not hold themselves: creating a user, changing a user's roles or rules, creating or
  changing a role, adding a rule to a role or removing one all go through it. A caller holds
  a rule when its exact ``(resource, operation, scope)`` is among the caller's rules (v4's
  ``check_user_rules``); a wider rule does not stand in for a narrower one here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import Session

from v6flow_server.auth.permissions import Operation, Resource, Scope, rule_key
from v6flow_server.auth.principals import Identity, UserIdentity
from v6flow_server.db.models import Role, Rule, User, member_table, user_role_table
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.services.visibility import NO_PERMISSION, Visibility

ModelT = TypeVar("ModelT")


def _users_of_partner_organizations(identity: Identity) -> ColumnElement[bool]:
    """Organizations in a collaboration with the caller's organization (or the caller's own)."""
    shared = select(member_table.c.organization_id).where(
        member_table.c.collaboration_id.in_(identity.collaboration_ids))
    return (User.organization_id == identity.organization_id) | User.organization_id.in_(shared)


def _users_visible(identity: Identity) -> ColumnElement[bool]:
    scope = identity.scope(Resource.USER, Operation.VIEW)
    if scope is Scope.GLOBAL:
        return true()
    if scope is Scope.COLLABORATION:
        return _users_of_partner_organizations(identity)
    if scope is Scope.ORGANIZATION:
        return User.organization_id == identity.organization_id
    if isinstance(identity, UserIdentity):  # everyone sees themselves (UserClient reads it)
        return User.id == identity.user_id
    raise ForbiddenError(NO_PERMISSION)


def _own_roles(identity: Identity) -> ColumnElement[bool]:
    if not isinstance(identity, UserIdentity):
        return false()
    return Role.id.in_(select(user_role_table.c.role_id).where(
        user_role_table.c.user_id == identity.user_id))


def _roles_visible(identity: Identity) -> ColumnElement[bool]:
    """Global roles and the roles of reachable organizations; one's own roles always (v4)."""
    scope = identity.scope(Resource.ROLE, Operation.VIEW)
    if scope is Scope.GLOBAL:
        return true()
    own = _own_roles(identity)
    if scope is None:
        return own
    reachable = Role.organization_id == identity.organization_id
    if scope is Scope.COLLABORATION:
        reachable = reachable | Role.organization_id.in_(select(
            member_table.c.organization_id).where(
            member_table.c.collaboration_id.in_(identity.collaboration_ids)))
    return own | Role.organization_id.is_(None) | reachable


USERS = Visibility(User, "User", _users_visible)
ROLES = Visibility(Role, "Role", _roles_visible)


def scope_to_reach(session: Session, identity: Identity, organization_id: int | None) -> Scope:
    """The narrowest scope of a rule that reaches an object of ``organization_id``.

    The caller's own organization needs ORGANIZATION, an organization that shares a
    collaboration with it needs COLLABORATION, anything else (and a global object, None)
    needs GLOBAL.
    """
    if organization_id is not None and organization_id == identity.organization_id:
        return Scope.ORGANIZATION
    if organization_id is not None and identity.collaboration_ids and session.scalar(
            select(member_table.c.collaboration_id).where(
                member_table.c.organization_id == organization_id,
                member_table.c.collaboration_id.in_(identity.collaboration_ids)).limit(1)
    ) is not None:
        return Scope.COLLABORATION
    return Scope.GLOBAL


def require_scope(identity: Identity, resource: Resource, operation: Operation,
                  scope: Scope) -> None:
    """Raise ForbiddenError unless the caller may do ``operation`` at ``scope`` (or wider)."""
    if not identity.can(resource, operation, scope):
        raise ForbiddenError(NO_PERMISSION)


def missing_rules(identity: Identity, rules: Iterable[Rule]) -> list[str]:
    """The rules (as ``name/operation/scope``) of ``rules`` that the caller does not hold."""
    return sorted({f"{r.name}/{r.operation}/{r.scope}" for r in rules
                   if rule_key(r.name, r.operation, r.scope) not in identity.rules})


def require_held(identity: Identity, rules: Iterable[Rule],
                 refusal: str = "You cannot assign or remove rules that you do not have "
                                "yourself") -> None:
    """The grant check: raise ForbiddenError naming the rules the caller does not hold."""
    missing = missing_rules(identity, rules)
    if missing:
        raise ForbiddenError(f"{refusal}: {', '.join(missing)}")


def rules_of(roles: Iterable[Role], rules: Iterable[Rule] = ()) -> set[Rule]:
    """Every rule that ``roles`` bundle, plus ``rules``."""
    return {rule for role in roles for rule in role.rules} | set(rules)


def rows_by_id(session: Session, model: type[ModelT], ids: Iterable[int],
               label: str) -> list[ModelT]:
    """The rows of ``ids`` (duplicates dropped, order kept) for a request body.

    Raises:
        BadRequestError: an id names no row (the body is wrong, not the URL).
    """
    rows: list[ModelT] = []
    for object_id in dict.fromkeys(ids):
        row = session.get(model, object_id)
        if row is None:
            raise BadRequestError(f"{label} id={object_id} does not exist")
        rows.append(row)
    return rows
