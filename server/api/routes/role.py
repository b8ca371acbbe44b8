"""Routes for roles and rules (read-only)."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import UserPrincipal, WorkDep
from server.api.openapi import errors
from server.api.pagination import PageDep, paginate_query
from server.api.params import IdPath, IdQuery, TextQuery
from server.api.serializers import role_out, rule_out
from server.db.models import Rule
from server.services import roles
from server.services.common import get_or_404
from v6flow.schemas import Page, RoleOut, RuleOut

router = APIRouter(tags=["role"])


@router.get("/role", responses=errors(403))
def list_roles(work: WorkDep, identity: UserPrincipal, page: PageDep,
               name: TextQuery = None, organization_id: IdQuery = None,
               user_id: IdQuery = None) -> Page[RoleOut]:
    """List roles."""
    stmt = roles.list_roles(identity=identity, name=name, organization_id=organization_id,
                            user_id=user_id)
    return paginate_query(work.session, stmt, page, lambda rows: [role_out(r) for r in rows])


@router.get("/role/{role_id}", responses=errors(403, 404))
def get_role(role_id: IdPath, work: WorkDep, identity: UserPrincipal) -> RoleOut:
    """One role."""
    return role_out(roles.get_role(session=work.session, identity=identity, role_id=role_id))


@router.get("/rule", responses=errors(403))
def list_rules(work: WorkDep, _identity: UserPrincipal, page: PageDep,
               name: TextQuery = None, operation: TextQuery = None,
               scope: TextQuery = None, role_id: IdQuery = None) -> Page[RuleOut]:
    """List rules."""
    stmt = roles.list_rules(name=name, operation=operation, scope=scope, role_id=role_id)
    return paginate_query(work.session, stmt, page, lambda rows: [rule_out(r) for r in rows])


@router.get("/rule/{rule_id}", responses=errors(403, 404))
def get_rule(rule_id: IdPath, work: WorkDep, _identity: UserPrincipal) -> RuleOut:
    """One rule."""
    return rule_out(get_or_404(work.session, Rule, rule_id, "Rule"))
