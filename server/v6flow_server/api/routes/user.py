"""Routes for users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from v6flow.schemas import Msg, Page, UserCreate, UserOut, UserUpdate
from v6flow_server.api.deps import StateDep, UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import DateQuery, IdPath, IdQuery, TextQuery
from v6flow_server.api.serializers import user_out
from v6flow_server.auth.password_policy import PasswordPolicy
from v6flow_server.services import users

router = APIRouter(tags=["user"])



@router.get("/user", responses=errors(403, 404))
def list_users(work: WorkDep, identity: UserPrincipal, page: PageDep,
               organization_id: IdQuery = None, collaboration_id: IdQuery = None,
               username: TextQuery = None, firstname: TextQuery = None,
               lastname: TextQuery = None, email: TextQuery = None,
               role_id: IdQuery = None, rule_id: IdQuery = None,
               last_seen_from: DateQuery = None, last_seen_till: DateQuery = None,
               ) -> Page[UserOut]:
    """List the users the caller may see; ``role_id`` must name a role the caller may see."""
    stmt = users.list_users(
        session=work.session, identity=identity, organization_id=organization_id,
        collaboration_id=collaboration_id, username=username, firstname=firstname,
        lastname=lastname, email=email, role_id=role_id, rule_id=rule_id,
        last_seen_from=last_seen_from, last_seen_till=last_seen_till)
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


@router.patch("/user/{user_id}", responses=errors(403, 404))
def update_user(user_id: IdPath, body: UserUpdate, work: WorkDep,
                identity: UserPrincipal) -> UserOut:
    """Change a user: oneself (not one's roles or rules) or a user in the caller's reach."""
    return user_out(users.update_user(session=work.session, identity=identity,
                                      user_id=user_id, data=body))


@router.delete("/user/{user_id}", responses=errors(403, 404))
def delete_user(user_id: IdPath, work: WorkDep, identity: UserPrincipal,
                delete_dependents: Annotated[bool, Query(
                    description="Also delete the tasks this user created.")] = False) -> Msg:
    """Delete a user (never the last holder of Root)."""
    users.delete_user(session=work.session, identity=identity, user_id=user_id,
                      delete_dependents=delete_dependents, outbox=work.outbox)
    return Msg(msg=f"User id={user_id} is removed from the database")
