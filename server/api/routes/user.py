"""Routes for users."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import StateDep, UserPrincipal, WorkDep
from server.api.openapi import errors
from server.api.pagination import PageDep, paginate_query
from server.api.params import IdPath, IdQuery, TextQuery
from server.api.serializers import user_out
from server.auth.password_policy import PasswordPolicy
from server.services import users
from v6flow.schemas import Page, UserCreate, UserOut

router = APIRouter(tags=["user"])


@router.get("/user", responses=errors(403))
def list_users(work: WorkDep, identity: UserPrincipal, page: PageDep,
               organization_id: IdQuery = None, username: TextQuery = None,
               firstname: TextQuery = None, lastname: TextQuery = None,
               email: TextQuery = None) -> Page[UserOut]:
    """List the users the caller may see."""
    stmt = users.list_users(identity=identity, organization_id=organization_id,
                            username=username, firstname=firstname, lastname=lastname,
                            email=email)
    return paginate_query(work.session, stmt, page, lambda rows: [user_out(u) for u in rows])


@router.get("/user/{user_id}", responses=errors(403, 404))
def get_user(user_id: IdPath, work: WorkDep, identity: UserPrincipal) -> UserOut:
    """One user."""
    return user_out(users.get_user(session=work.session, identity=identity, user_id=user_id))


@router.post("/user", status_code=201, responses=errors(403, 404))
def create_user(body: UserCreate, work: WorkDep, identity: UserPrincipal,
                state: StateDep) -> UserOut:
    """Create a user (the password must satisfy the password policy)."""
    policy = PasswordPolicy(min_length=state.settings.password_min_length)
    return user_out(users.create_user(session=work.session, identity=identity, data=body,
                                      password_policy=policy))
