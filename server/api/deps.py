"""Request dependencies: one unit of work per request and the caller's identity.

``WorkDep`` opens one session per request, commits when the route returned (before the
response is sent, ``scope="function"``), rolls back on any error, and only then publishes
the events the route queued in its outbox (a bus that keeps events in the database writes
them in that very transaction instead).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.auth.principals import (
    ClientType,
    ContainerIdentity,
    Identity,
    NodeIdentity,
    UserIdentity,
)
from server.errors import ForbiddenError, UnauthorizedError
from server.events import EventBus, Outbox, TransactionalBus
from server.services.auth import resolve_identity
from server.state import AppState


@dataclass
class Work:
    """The session of this request and the events to publish after its commit."""

    session: Session
    outbox: Outbox = field(default_factory=Outbox)


# Dependencies without I/O are ``async def``: FastAPI runs a sync dependency in the thread
# pool, and each such trip cost more than the dependency itself (a request went through the
# pool up to eight times).


async def get_state(request: Request) -> AppState:
    """The running app's state."""
    state: AppState = request.app.state.v6flow
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _finish(work: Work, failed: bool, bus: EventBus) -> None:
    """Commit (or roll back) and close the request's session (in a worker thread).

    A bus that keeps events in the database gets them in this transaction (see
    :class:`~server.events.TransactionalBus`); other buses after the commit.
    """
    try:
        if failed:
            work.session.rollback()
        else:
            if work.outbox.events and isinstance(bus, TransactionalBus):
                bus.write_in(work.session, work.outbox.events)
                work.outbox.events = []
            work.session.commit()
    finally:
        work.session.close()


async def get_work(state: StateDep) -> AsyncIterator[Work]:
    """One transaction per request; events go out only after a successful commit.

    The session is made in the event loop (it connects lazily, at its first statement);
    the commit or rollback runs in a worker thread.
    """
    work = Work(state.session_factory())
    try:
        yield work
    except BaseException:
        with anyio.CancelScope(shield=True):  # a cancelled request still ends its transaction
            await run_in_threadpool(_finish, work, True, state.bus)
        raise
    with anyio.CancelScope(shield=True):
        await run_in_threadpool(_finish, work, False, state.bus)
    work.outbox.flush_to(state.bus)


WorkDep = Annotated[Work, Depends(get_work, scope="function")]


#: Declares the bearer scheme in OpenAPI; :func:`bearer_token` reads the header itself so
#: that a missing and a malformed header get different messages (both 401).
_BEARER_SCHEME = HTTPBearer(auto_error=False, scheme_name="bearer",
                            description="An access token from /token/user, /token/node or "
                                        "/token/container")
_SchemeDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)]


async def bearer_token(request: Request, _scheme: _SchemeDep) -> str:
    """The token of the ``Authorization: Bearer <token>`` header.

    Raises:
        UnauthorizedError: the header is missing or not a bearer token.
    """
    header = request.headers.get("authorization")
    if not header:
        raise UnauthorizedError("Missing Authorization Header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("Authorization header must be 'Bearer <token>'")
    return token.strip()


BearerDep = Annotated[str, Depends(bearer_token)]


def get_identity(state: StateDep, work: WorkDep, token: BearerDep) -> Identity:
    """Resolve the bearer access token into an identity (once per request)."""
    return resolve_identity(session=work.session, issuer=state.token_issuer(), token=token)


IdentityDep = Annotated[Identity, Depends(get_identity)]


def _only(*types: type[Identity]) -> Callable[[Identity], Awaitable[Identity]]:
    allowed = ", ".join(sorted(t.__name__.removesuffix("Identity").lower() for t in types))

    async def check(identity: IdentityDep) -> Identity:
        if not isinstance(identity, types):
            raise ForbiddenError(
                f"This endpoint is not available to {identity.client_type.value} tokens "
                f"(allowed: {allowed})"
            )
        return identity

    return check


UserPrincipal = Annotated[UserIdentity, Depends(_only(UserIdentity))]
NodePrincipal = Annotated[NodeIdentity, Depends(_only(NodeIdentity))]
ContainerPrincipal = Annotated[ContainerIdentity, Depends(_only(ContainerIdentity))]
UserOrNodePrincipal = Annotated[UserIdentity | NodeIdentity,
                                Depends(_only(UserIdentity, NodeIdentity))]
UserOrContainerPrincipal = Annotated[UserIdentity | ContainerIdentity,
                                     Depends(_only(UserIdentity, ContainerIdentity))]
AnyPrincipal = IdentityDep

__all__ = [
    "AnyPrincipal",
    "ClientType",
    "ContainerPrincipal",
    "NodePrincipal",
    "StateDep",
    "UserOrContainerPrincipal",
    "UserOrNodePrincipal",
    "UserPrincipal",
    "Work",
    "WorkDep",
]
