"""Routes for users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api.deps import UserPrincipal, WorkDep
from server.api.pagination import PageDep, paginate_query
from server.api.shapes import user_out
from server.services import users
from v6flow.schemas import UserCreate

router = APIRouter(tags=["user"])


@router.get("/user")
def list_users(request: Request, work: WorkDep, identity: UserPrincipal, page: PageDep,
               organization_id: int | None = None, username: str | None = None,
               firstname: str | None = None, lastname: str | None = None,
               email: str | None = None) -> JSONResponse:
    """List the users the caller may see."""
    stmt = users.list_users(identity=identity, organization_id=organization_id,
                            username=username, firstname=firstname, lastname=lastname,
                            email=email)
    return paginate_query(request, work.session, stmt, page,
                          lambda rows: [user_out(u) for u in rows])


@router.get("/user/{user_id}")
def get_user(user_id: int, work: WorkDep, identity: UserPrincipal) -> dict[str, Any]:
    """One user."""
    return user_out(users.get_user(session=work.session, identity=identity, user_id=user_id))


@router.post("/user", status_code=201)
def create_user(body: UserCreate, work: WorkDep, identity: UserPrincipal) -> dict[str, Any]:
    """Create a user."""
    return user_out(users.create_user(session=work.session, identity=identity, data=body))
