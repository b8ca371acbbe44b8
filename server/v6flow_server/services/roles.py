"""Roles and rules: visibility, custom roles (create, edit, delete, their rules), rule lists.

Default roles are seeded at start-up and never change through the API (400). A custom role
belongs to one organization and bundles only rules that whoever creates or changes it holds
(:func:`~v6flow_server.services.access.require_held`). Membership filters (``user_id``) answer only
for users the caller may see, as ``GET /user/<id>`` does (security review finding 6).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, delete, select
from sqlalchemy.orm import Session

from v6flow.schemas import RoleCreate, RoleUpdate
from v6flow_server.auth.permissions import (
    OPERATION_NAMES,
    SCOPE_NAMES,
    Operation,
    Resource,
    Scope,
)
from v6flow_server.auth.principals import Identity
from v6flow_server.db.models import Organization, Role, Rule, role_rule_table, user_role_table
from v6flow_server.errors import BadRequestError, NotFoundError
from v6flow_server.services import audit
from v6flow_server.services.access import (
    ROLES,
    USERS,
    require_held,
    require_scope,
    rows_by_id,
    scope_to_reach,
)
from v6flow_server.services.audit import AuditEvent
from v6flow_server.services.common import get_or_404

#: Every spelling of an operation/scope a client may filter on: v4 names (``VIEW``,
#: ``ORGANIZATION``), v4 values (``view``, ``organization``) and the stored codes (``v``,
#: ``org``), case-insensitively.
_OPERATIONS: dict[str, Operation] = {
    alias.lower(): op for op in Operation for alias in (op.value, OPERATION_NAMES[op])}
_SCOPES: dict[str, Scope] = {
    alias.lower(): scope for scope in Scope for alias in (scope.value, SCOPE_NAMES[scope])}


def list_roles(*, session: Session, identity: Identity, name: str | None = None,
               description: str | None = None, organization_id: int | None = None,
               rule_id: int | None = None, user_id: int | None = None,
               include_root: bool | None = None) -> Select[Role]:
    """Query of the visible roles, filtered (``include_root`` adds the global roles to an
    ``organization_id`` filter, as in v4).

    Raises:
        NotFoundError, ForbiddenError: ``user_id`` names a user the caller may not see.
    """
    if user_id is not None:
        USERS.get(session=session, identity=identity, object_id=user_id)

    def of_organization(value: int) -> ColumnElement[bool]:
        condition = Role.organization_id == value
        return condition | Role.organization_id.is_(None) if include_root else condition

    return ROLES.query(identity, [
        (name, Role.name.like),
        (description, Role.description.like),
        (organization_id, of_organization),
        (rule_id, lambda v: Role.rules.any(Rule.id == v)),
        (user_id, lambda v: Role.id.in_(select(user_role_table.c.role_id).where(
            user_role_table.c.user_id == v))),
    ])


def get_role(*, session: Session, identity: Identity, role_id: int) -> Role:
    """One visible role.

    Raises:
        NotFoundError, ForbiddenError.
    """
    return ROLES.get(session=session, identity=identity, object_id=role_id)


def _require_name_free(session: Session, name: str, organization_id: int | None,
                       except_id: int | None = None) -> None:
    """No two roles of one organization, and no custom role and default role, share a name."""
    clash = select(Role.id).where(Role.name == name, Role.organization_id.is_(None)
                                  | (Role.organization_id == organization_id))
    if except_id is not None:
        clash = clash.where(Role.id != except_id)
    if session.scalar(clash.limit(1)) is not None:
        raise BadRequestError(f"A role named '{name}' already exists for this organization "
                              "or as a default role")


def create_role(*, session: Session, identity: Identity, data: RoleCreate) -> Role:
    """Create a custom role of an organization in reach, with rules the creator holds.

    Raises:
        NotFoundError (organization), ForbiddenError (out of reach, rules not held),
        BadRequestError (unknown rule, name taken).
    """
    org_id = data.organization_id if data.organization_id is not None else identity.organization_id
    get_or_404(session, Organization, org_id, "Organization")
    require_scope(identity, Resource.ROLE, Operation.CREATE,
                  scope_to_reach(session, identity, org_id))
    rules = rows_by_id(session, Rule, data.rules or [], "Rule")
    require_held(identity, rules)
    _require_name_free(session, data.name, org_id)
    role = Role(name=data.name, description=data.description, organization_id=org_id,
                is_default_role=False, rules=rules)
    session.add(role)
    session.flush()
    audit.record(session, event=AuditEvent.ROLE_CREATED, actor=identity,
                 target=("role", role.id), rule_ids=sorted(r.id for r in rules))
    return role


def _changeable(session: Session, identity: Identity, role_id: int,
                operation: Operation) -> Role:
    """A custom role in the caller's reach for ``operation`` (EDIT or DELETE).

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (a default role).
    """
    role = get_or_404(session, Role, role_id, "Role")
    require_scope(identity, Resource.ROLE, operation,
                  scope_to_reach(session, identity, role.organization_id))
    if role.is_default_role:
        raise BadRequestError(f"'{role.name}' is a default role; default roles cannot be "
                              "changed or deleted")
    return role


def update_role(*, session: Session, identity: Identity, role_id: int,
                data: RoleUpdate) -> Role:
    """Rename, describe or replace the rules of a custom role (null fields stay).

    Raises:
        NotFoundError, ForbiddenError (out of reach, added or removed rules not held),
        BadRequestError (default role, unknown rule, name taken).
    """
    role = _changeable(session, identity, role_id, Operation.EDIT)
    if data.rules is not None:
        rules = rows_by_id(session, Rule, data.rules, "Rule")
        require_held(identity, set(rules) ^ set(role.rules))
        role.rules = rules
    if data.name is not None and data.name != role.name:
        _require_name_free(session, data.name, role.organization_id, except_id=role.id)
        role.name = data.name
    if data.description is not None:
        role.description = data.description
    session.flush()
    _audit_update(session, identity, role)
    return role


def delete_role(*, session: Session, identity: Identity, role_id: int) -> None:
    """Delete a custom role; its holders lose it (v4). Its rules must be the caller's.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (a default role).
    """
    role = _changeable(session, identity, role_id, Operation.DELETE)
    require_held(identity, role.rules,
                 "You cannot delete a role with rules that you do not have yourself")
    audit.record(session, event=AuditEvent.ROLE_DELETED, actor=identity,
                 target=("role", role.id), rule_ids=sorted(r.id for r in role.rules))
    session.execute(delete(user_role_table).where(user_role_table.c.role_id == role.id))
    session.delete(role)
    session.flush()


def role_rules(*, session: Session, identity: Identity, role_id: int) -> Select[Rule]:
    """Query of the rules of a visible role.

    Raises:
        NotFoundError, ForbiddenError.
    """
    role = get_role(session=session, identity=identity, role_id=role_id)
    return select(Rule).where(Rule.id.in_(select(role_rule_table.c.rule_id).where(
        role_rule_table.c.role_id == role.id))).order_by(Rule.id)


def add_rule(*, session: Session, identity: Identity, role_id: int, rule_id: int) -> Role:
    """Add a rule the caller holds to a custom role in reach (no-op when already there).

    Raises:
        NotFoundError (role, rule), ForbiddenError, BadRequestError (a default role).
    """
    role = _changeable(session, identity, role_id, Operation.EDIT)
    rule = get_or_404(session, Rule, rule_id, "Rule")
    require_held(identity, [rule])
    if rule not in role.rules:
        role.rules.append(rule)
        _audit_update(session, identity, role)
    session.flush()
    return role


def remove_rule(*, session: Session, identity: Identity, role_id: int, rule_id: int) -> Role:
    """Take a rule the caller holds out of a custom role in reach.

    Raises:
        NotFoundError (role, rule, or the rule is not in the role), ForbiddenError,
        BadRequestError (a default role).
    """
    role = _changeable(session, identity, role_id, Operation.EDIT)
    rule = get_or_404(session, Rule, rule_id, "Rule")
    if rule not in role.rules:
        raise NotFoundError(f"Rule id={rule_id} is not part of role id={role_id}")
    require_held(identity, [rule])
    role.rules.remove(rule)
    _audit_update(session, identity, role)
    session.flush()
    return role


def _audit_update(session: Session, identity: Identity, role: Role) -> None:
    audit.record(session, event=AuditEvent.ROLE_UPDATED, actor=identity,
                 target=("role", role.id), rule_ids=sorted(r.id for r in role.rules))


def _parse(value: str, table: dict[str, Operation] | dict[str, Scope], field: str,
           names: list[str]) -> str:
    try:
        return table[value.strip().lower()].value
    except KeyError:
        raise BadRequestError(f"{field} must be one of {', '.join(names)} "
                              f"(got '{value}')") from None


def list_rules(*, session: Session, identity: Identity, name: str | None = None,
               operation: str | None = None, scope: str | None = None,
               role_id: int | None = None, user_id: int | None = None) -> Select[Rule]:
    """Every rule (the rule table is public to logged-in users), filtered.

    ``operation``/``scope`` accept the printed names (``VIEW``, ``ORGANIZATION``) and the
    v4/stored spellings. ``role_id`` needs a visible role; ``user_id`` a visible user, whose
    rules are those of their roles plus their own.

    Raises:
        BadRequestError (unknown operation/scope), NotFoundError, ForbiddenError.
    """
    conditions: list[ColumnElement[bool]] = []
    if name is not None:
        conditions.append(Rule.name.like(name))
    if operation is not None:
        conditions.append(Rule.operation == _parse(
            operation, _OPERATIONS, "operation", list(OPERATION_NAMES.values())))
    if scope is not None:
        conditions.append(Rule.scope == _parse(
            scope, _SCOPES, "scope", list(SCOPE_NAMES.values())))
    if role_id is not None:
        get_role(session=session, identity=identity, role_id=role_id)
        conditions.append(Rule.id.in_(select(role_rule_table.c.rule_id).where(
            role_rule_table.c.role_id == role_id)))
    if user_id is not None:
        user = USERS.get(session=session, identity=identity, object_id=user_id)
        held = {rule.id for role in user.roles for rule in role.rules} | {
            rule.id for rule in user.rules}
        conditions.append(Rule.id.in_(sorted(held)))
    return select(Rule).where(*conditions).order_by(Rule.id)


def get_rule(*, session: Session, rule_id: int) -> Rule:
    """One rule.

    Raises:
        NotFoundError.
    """
    return get_or_404(session, Rule, rule_id, "Rule")
