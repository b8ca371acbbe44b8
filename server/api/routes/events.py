"""``GET /api/events``: the Server-Sent-Events push channel for nodes, users and containers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from server.api.deps import AnyPrincipal, StateDep, WorkDep
from server.api.openapi import errors
from server.auth.permissions import Operation, Resource, Scope
from server.auth.principals import ContainerIdentity, Identity, NodeIdentity
from server.errors import ForbiddenError
from server.events import Event, EventFilter, EventName
from server.services.nodes import set_presence
from server.state import AppState

router = APIRouter(tags=["events"])
NODE_EVENTS = frozenset({EventName.NEW_TASK, EventName.KILL_CONTAINERS})
#: What an algorithm container may follow: its own job's run progress and live logs.
CONTAINER_EVENTS = frozenset({EventName.RUN_UPDATE, EventName.ALGORITHM_LOG})
PING = ": ping\n\n"


def event_filter(identity: Identity) -> EventFilter:
    """Nodes get new_task/kill of their collaboration; users the events of theirs.

    An algorithm container (e.g. a central function waiting for its subtasks) gets only
    ``run_update`` and ``algorithm_log`` of the tasks of its own job.

    Raises:
        ForbiddenError: a user without any event RECEIVE rule.
    """
    if isinstance(identity, ContainerIdentity):
        collaboration_id, job_id = identity.collaboration_id, identity.job_id
        return lambda e: (e.collaboration_id == collaboration_id and e.name in CONTAINER_EVENTS
                          and e.data.get("job_id") == job_id)
    if isinstance(identity, NodeIdentity):
        collaboration_id = identity.collaboration_id
        return lambda e: e.collaboration_id == collaboration_id and e.name in NODE_EVENTS
    scope = identity.scope(Resource.EVENT, Operation.RECEIVE)
    if scope is None:
        raise ForbiddenError("You lack the permission to receive events")
    if scope is Scope.GLOBAL:
        return lambda e: True
    collaboration_ids = identity.collaboration_ids
    return lambda e: e.collaboration_id in collaboration_ids


def _presence(state: AppState, node_id: int, *, online: bool, ip: str | None) -> None:
    with state.session_factory.begin() as session:
        set_presence(session=session, node_id=node_id, online=online, ip=ip)


async def _stream(request: Request, state: AppState, identity: Identity,
                  accept: EventFilter) -> AsyncIterator[str]:
    node_id = identity.node_id if isinstance(identity, NodeIdentity) else None
    try:
        async with state.bus.subscribe(accept) as subscription:
            yield Event(EventName.SYNC, 0, {}).to_sse()
            while not await request.is_disconnected():
                event = await subscription.get(timeout=state.settings.keepalive_seconds)
                yield PING if event is None else event.to_sse()
    finally:
        if node_id is not None:
            with anyio.CancelScope(shield=True):
                if state.node_streams.leave(node_id):
                    await run_in_threadpool(_presence, state, node_id, online=False, ip=None)


@router.get("/events", response_class=StreamingResponse, responses={
    **errors(403),
    200: {"description": "Server-Sent Events: ``sync`` first, then live events",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
})
async def stream_events(request: Request, state: StateDep, work: WorkDep,
                        identity: AnyPrincipal) -> StreamingResponse:
    """Stream events: first ``sync``, then live events, and ``: ping`` keep-alives."""
    accept = event_filter(identity)
    if isinstance(identity, NodeIdentity):
        state.node_streams.join(identity.node_id)
        ip = request.client.host if request.client else None
        # in this request's transaction (committed before the stream starts)
        await run_in_threadpool(lambda: set_presence(session=work.session,
                                                     node_id=identity.node_id, online=True,
                                                     ip=ip))
    return StreamingResponse(
        _stream(request, state, identity, accept), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
