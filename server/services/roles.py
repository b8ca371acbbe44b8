"""Roles and rules: read-only listing (default roles are seeded at start-up)."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from server.auth.permissions import Operation, Resource, Scope
from server.auth.principals import Identity
from server.db.models import Role, Rule, role_rule_table, user_role_table
from server.errors import ForbiddenError
from server.services.common import get_or_404
from server.services.organizations import NO_PERMISSION


def _role_scope(identity: Identity) -> Scope:
    scope = identity.scope(Resource.ROLE, Operation.VIEW)
    if scope is None:
        raise ForbiddenError(NO_PERMISSION)
    return scope


def list_roles(*, identity: Identity, name: str | None = None,
               organization_id: int | None = None,
               user_id: int | None = None) -> Select[Role]:
    """Global roles plus the roles of organizations the caller may see."""
    stmt = select(Role).order_by(Role.id)
    if _role_scope(identity) is not Scope.GLOBAL:
        stmt = stmt.where(Role.organization_id.is_(None)
                          | (Role.organization_id == identity.organization_id))
    if name is not None:
        stmt = stmt.where(Role.name.like(name))
    if organization_id is not None:
        stmt = stmt.where(Role.organization_id == organization_id)
    if user_id is not None:
        stmt = stmt.where(Role.id.in_(select(user_role_table.c.role_id).where(
            user_role_table.c.user_id == user_id)))
    return stmt


def get_role(*, session: Session, identity: Identity, role_id: int) -> Role:
    """One role.

    Raises:
        NotFoundError, ForbiddenError.
    """
    role = get_or_404(session, Role, role_id, "Role")
    if (_role_scope(identity) is not Scope.GLOBAL and role.organization_id is not None
            and role.organization_id != identity.organization_id):
        raise ForbiddenError(NO_PERMISSION)
    return role


def list_rules(*, name: str | None = None, operation: str | None = None,
               scope: str | None = None, role_id: int | None = None) -> Select[Rule]:
    """Every rule (the rule table is public to logged-in users), filtered."""
    stmt = select(Rule).order_by(Rule.id)
    if name is not None:
        stmt = stmt.where(Rule.name == name)
    if operation is not None:
        stmt = stmt.where(Rule.operation == operation)
    if scope is not None:
        stmt = stmt.where(Rule.scope == scope)
    if role_id is not None:
        stmt = stmt.where(Rule.id.in_(select(role_rule_table.c.rule_id).where(
            role_rule_table.c.role_id == role_id)))
    return stmt
