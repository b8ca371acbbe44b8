"""Routes for roles (custom roles and their rules) and the rule table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from v6flow.schemas import Msg, Page, RoleCreate, RoleOut, RoleUpdate, RuleOut
from v6flow_server.api.deps import UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import IdPath, IdQuery, TextQuery
from v6flow_server.api.serializers import role_out, rule_out
from v6flow_server.db.models import Role, Rule
from v6flow_server.services import roles

router = APIRouter(tags=["role"])


def _rules_of(role: Role) -> list[RuleOut]:
    return [rule_out(r) for r in sorted(role.rules, key=lambda r: r.id)]


def _rules_page(rows: Sequence[Rule]) -> list[RuleOut]:
    return [rule_out(r) for r in rows]


@router.get("/role", responses=errors(403, 404))
def list_roles(work: WorkDep, identity: UserPrincipal, page: PageDep,
               name: TextQuery = None, description: TextQuery = None,
               organization_id: IdQuery = None, rule_id: IdQuery = None,
               user_id: IdQuery = None,
               include_root: Annotated[bool | None, Query(
                   description="With organization_id: add the global roles.")] = None,
               ) -> Page[RoleOut]:
    """List the roles the caller may see; ``user_id`` must name a user the caller may see."""
    stmt = roles.list_roles(session=work.session, identity=identity, name=name,
                            description=description, organization_id=organization_id,
                            rule_id=rule_id, user_id=user_id, include_root=include_root)
    return paginate_query(work.session, stmt, page, lambda rows: [role_out(r) for r in rows])


@router.post("/role", status_code=201, responses=errors(403, 404))
def create_role(body: RoleCreate, work: WorkDep, identity: UserPrincipal) -> RoleOut:
    """Create a custom role with rules the caller holds."""
    return role_out(roles.create_role(session=work.session, identity=identity, data=body))


@router.get("/role/{role_id}", responses=errors(403, 404))
def get_role(role_id: IdPath, work: WorkDep, identity: UserPrincipal) -> RoleOut:
    """One role."""
    return role_out(roles.get_role(session=work.session, identity=identity, role_id=role_id))


@router.patch("/role/{role_id}", responses=errors(403, 404))
def update_role(role_id: IdPath, body: RoleUpdate, work: WorkDep,
                identity: UserPrincipal) -> RoleOut:
    """Change a custom role (default roles answer 400)."""
    return role_out(roles.update_role(session=work.session, identity=identity,
                                      role_id=role_id, data=body))


@router.delete("/role/{role_id}", responses=errors(403, 404))
def delete_role(role_id: IdPath, work: WorkDep, identity: UserPrincipal) -> Msg:
    """Delete a custom role; its holders lose it (default roles answer 400)."""
    roles.delete_role(session=work.session, identity=identity, role_id=role_id)
    return Msg(msg=f"Role id={role_id} is removed from the database")


@router.get("/role/{role_id}/rule", responses=errors(403, 404))
def list_role_rules(role_id: IdPath, work: WorkDep, identity: UserPrincipal,
                    page: PageDep) -> Page[RuleOut]:
    """The rules of a role."""
    stmt = roles.role_rules(session=work.session, identity=identity, role_id=role_id)
    return paginate_query(work.session, stmt, page, _rules_page)


@router.post("/role/{role_id}/rule/{rule_id}", status_code=201, responses=errors(403, 404))
def add_role_rule(role_id: IdPath, rule_id: IdPath, work: WorkDep,
                  identity: UserPrincipal) -> list[RuleOut]:
    """Add a rule the caller holds to a custom role; answers the role's rules."""
    return _rules_of(roles.add_rule(session=work.session, identity=identity,
                                    role_id=role_id, rule_id=rule_id))


@router.delete("/role/{role_id}/rule/{rule_id}", responses=errors(403, 404))
def remove_role_rule(role_id: IdPath, rule_id: IdPath, work: WorkDep,
                     identity: UserPrincipal) -> list[RuleOut]:
    """Take a rule the caller holds out of a custom role; answers the role's rules."""
    return _rules_of(roles.remove_rule(session=work.session, identity=identity,
                                       role_id=role_id, rule_id=rule_id))


@router.get("/rule", responses=errors(403, 404))
def list_rules(work: WorkDep, identity: UserPrincipal, page: PageDep,
               name: TextQuery = None, operation: TextQuery = None,
               scope: TextQuery = None, role_id: IdQuery = None,
               user_id: IdQuery = None) -> Page[RuleOut]:
    """List rules; ``operation``/``scope`` take names (VIEW, ORGANIZATION) or v4 values."""
    stmt = roles.list_rules(session=work.session, identity=identity, name=name,
                            operation=operation, scope=scope, role_id=role_id,
                            user_id=user_id)
    return paginate_query(work.session, stmt, page, _rules_page)


@router.get("/rule/{rule_id}", responses=errors(403, 404))
def get_rule(rule_id: IdPath, work: WorkDep, _identity: UserPrincipal) -> RuleOut:
    """One rule."""
    return rule_out(roles.get_rule(session=work.session, rule_id=rule_id))
