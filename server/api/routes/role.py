"""Routes for roles and rules (read-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api.deps import UserPrincipal, WorkDep
from server.api.pagination import PageDep, paginate_query
from server.api.shapes import role_out, rule_out
from server.db.models import Rule
from server.services import roles
from server.services.common import get_or_404

router = APIRouter(tags=["role"])


@router.get("/role")
def list_roles(request: Request, work: WorkDep, identity: UserPrincipal, page: PageDep,
               name: str | None = None, organization_id: int | None = None,
               user_id: int | None = None) -> JSONResponse:
    """List roles."""
    stmt = roles.list_roles(identity=identity, name=name, organization_id=organization_id,
                            user_id=user_id)
    return paginate_query(request, work.session, stmt, page,
                          lambda rows: [role_out(r) for r in rows])


@router.get("/role/{role_id}")
def get_role(role_id: int, work: WorkDep, identity: UserPrincipal) -> dict[str, Any]:
    """One role."""
    return role_out(roles.get_role(session=work.session, identity=identity, role_id=role_id))


@router.get("/rule")
def list_rules(request: Request, work: WorkDep, _identity: UserPrincipal, page: PageDep,
               name: str | None = None, operation: str | None = None,
               scope: str | None = None, role_id: int | None = None) -> JSONResponse:
    """List rules."""
    stmt = roles.list_rules(name=name, operation=operation, scope=scope, role_id=role_id)
    return paginate_query(request, work.session, stmt, page,
                          lambda rows: [rule_out(r) for r in rows])


@router.get("/rule/{rule_id}")
def get_rule(rule_id: int, work: WorkDep, _identity: UserPrincipal) -> dict[str, Any]:
    """One rule."""
    return rule_out(get_or_404(work.session, Rule, rule_id, "Rule"))
