"""Request dependencies: one unit of work per request and the caller's identity.

``WorkDep`` opens one session per request, commits when the route returned (before the
response is sent, ``scope="function"``), rolls back on any error, and only then publishes
the events the route queued in its outbox (a bus that keeps events in the database writes
them in that very transaction instead).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from v6flow_server.auth.principals import (
    ClientType,
    ContainerIdentity,
    Identity,
    NodeIdentity,
    UserIdentity,
)
from v6flow_server.db.session import READ_ONLY_OPTION
from v6flow_server.errors import ForbiddenError, UnauthorizedError
from v6flow_server.events import EventBus, Outbox, TransactionalBus
from v6flow_server.services.auth import resolve_identity
from v6flow_server.state import AppState


@dataclass
class Work:
    """The session of this request and the events to publish after its commit."""

    session: Session
    outbox: Outbox = field(default_factory=Outbox)
    bus: EventBus | None = None

    def commit(self) -> None:
        """Commit the request's transaction; a bus that keeps events in the database gets
        them in it (see :class:`~v6flow_server.events.TransactionalBus`), others after it."""
        if self.outbox.events and isinstance(self.bus, TransactionalBus):
            self.bus.write_in(self.session, self.outbox.events)
            self.outbox.events = []
        self.session.commit()


# Dependencies without I/O are ``async def``: FastAPI runs a sync dependency in the thread
# pool, and each such trip cost more than the dependency itself (a request went through the
# pool up to eight times).


async def get_state(request: Request) -> AppState:
    """The running app's state."""
    state: AppState = request.app.state.v6flow
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _end(work: Work, failed: bool) -> None:
    """Roll back or commit what is still open (in a worker thread)."""
    if failed:
        work.session.rollback()
    else:
        work.commit()


async def get_work(state: StateDep) -> AsyncIterator[Work]:
    """One transaction per request; events go out only after a successful commit.

    The session is made in the event loop (it connects lazily, at its first statement). A
    sync route's transaction is committed (or rolled back) in the very worker thread that
    ran the route (:func:`install_unit_of_work`): a transaction never waits for a free
    worker thread while it holds SQLite's write lock (with every worker thread waiting for
    that lock, it waited forever). What is still open here (async routes) ends in a worker
    thread.
    """
    work = Work(state.session_factory(), bus=state.bus)
    try:
        yield work
    except BaseException:
        if work.session.in_transaction():
            with anyio.CancelScope(shield=True):  # a cancelled request still ends it
                await run_in_threadpool(_end, work, True)
        work.session.close()
        raise
    if work.session.in_transaction():
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_end, work, False)
    work.session.close()  # nothing open: no I/O
    work.outbox.flush_to(state.bus)


def _committing(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` (a sync route) followed, in the same thread, by the end of its transaction."""

    @functools.wraps(call)
    def route(**arguments: Any) -> Any:
        work = next((value for value in arguments.values() if isinstance(value, Work)), None)
        try:
            result = call(**arguments)
        except BaseException:
            if work is not None and work.session.in_transaction():
                work.session.rollback()
            raise
        if work is not None and work.session.in_transaction():
            work.commit()
        return result

    route.commits_its_work = True  # type: ignore[attr-defined]
    return route


def install_unit_of_work(routers: Iterable[APIRouter]) -> None:
    """Let every sync route of ``routers`` end its own transaction (see :func:`get_work`).

    The routers' own routes are changed, once, before an app includes them (an app builds
    its routes from their endpoints).
    """
    for router in routers:
        for route in router.routes:
            if (isinstance(route, APIRoute) and not inspect.iscoroutinefunction(route.endpoint)
                    and not getattr(route.endpoint, "commits_its_work", False)):
                route.endpoint = _committing(route.endpoint)
                route.dependant.call = route.endpoint


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


def _identity_of(state: AppState, token: str) -> Identity:
    # It only reads: deferred on SQLite (no write lock), without BEGIN/COMMIT on PostgreSQL
    # (each statement reads committed data, as it would in a READ COMMITTED transaction).
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if state.engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    with state.session_factory.begin() as session:
        session.connection(execution_options=options)
        return resolve_identity(session=session, issuer=state.token_issuer(), token=token)


async def get_identity(state: StateDep, token: BearerDep) -> Identity:
    """Resolve the bearer access token into an identity (once per request), in a short
    transaction of its own (begun and ended in one worker thread)."""
    return await run_in_threadpool(_identity_of, state, token)


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
