"""``GET /api/events``: the Server-Sent-Events push channel for nodes, users and containers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from v6flow.wire import utcnow
from v6flow_server.api.deps import AnyPrincipal, StateDep, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import ContainerIdentity, Identity, NodeIdentity
from v6flow_server.errors import ForbiddenError
from v6flow_server.events import SYNC, Event, EventFilter, EventName, Outbox
from v6flow_server.services import presence
from v6flow_server.services.nodes import node_reach
from v6flow_server.services.runs import run_reach
from v6flow_server.services.tasks import task_reach
from v6flow_server.state import AppState

router = APIRouter(tags=["events"])
log = structlog.get_logger(__name__)
#: What a node needs: tasks to fetch and containers to kill.
NODE_EVENTS = frozenset({EventName.NEW_TASK, EventName.KILL_CONTAINERS})
#: What an algorithm container may follow: its own job's run progress and live logs.
CONTAINER_EVENTS = frozenset({EventName.RUN_UPDATE, EventName.ALGORITHM_LOG})
USER_EVENTS = frozenset({EventName.NEW_TASK, EventName.RUN_UPDATE, EventName.ALGORITHM_LOG,
                         EventName.KILL_CONTAINERS, EventName.NODE_STATUS})
RUN_EVENTS = frozenset({EventName.RUN_UPDATE, EventName.ALGORITHM_LOG})
PING = ": ping\n\n"


def event_filter(identity: Identity) -> EventFilter:
    """An event reaches a stream only when REST would show the caller the object it describes.

    ``new_task`` passes the task VIEW rule, ``run_update``/``algorithm_log`` the run VIEW
    rule, ``kill_containers`` the run VIEW rule for every run it lists, ``node_status`` the
    node VIEW rule (``nodes.node_reach``): the very
    :class:`~v6flow_server.services.reach.Reach` the REST queries use (``tasks.task_reach``,
    ``runs.run_reach``). A user's events are further bounded by the scope of their event
    RECEIVE rule. Nodes get only ``new_task``/``kill_containers``; an algorithm container only
    ``run_update``/``algorithm_log`` of its own job. Unknown event names go to nobody.

    Raises:
        ForbiddenError: a user without any event RECEIVE rule.
    """
    cap = Scope.GLOBAL
    if isinstance(identity, ContainerIdentity):
        names = CONTAINER_EVENTS
    elif isinstance(identity, NodeIdentity):
        names = NODE_EVENTS
    else:
        receive = identity.scope(Resource.EVENT, Operation.RECEIVE)
        if receive is None:
            raise ForbiddenError("You lack the permission to receive events")
        names, cap = USER_EVENTS, receive
    task_seen = task_reach(identity, cap=cap)
    run_seen = run_reach(identity, cap=cap)
    node_seen = node_reach(identity, cap=cap)

    def run_visible(collaboration_id: int, item: dict[str, Any]) -> bool:
        return run_seen is not None and run_seen.allows(
            collaboration_id=collaboration_id, organization_id=item.get("organization_id"),
            job_id=item.get("job_id"))

    def accept(event: Event) -> bool:
        if event.name not in names:
            return False
        if event.name is EventName.NEW_TASK:
            return task_seen is not None and task_seen.allows(
                collaboration_id=event.collaboration_id,
                organization_id=event.data.get("init_org_id"), job_id=event.data.get("job_id"))
        if event.name in RUN_EVENTS:
            return run_visible(event.collaboration_id, event.data)
        if event.name is EventName.NODE_STATUS:
            return node_seen is not None and node_seen.allows(
                collaboration_id=event.collaboration_id,
                organization_id=event.data.get("organization_id"))
        if event.name is EventName.KILL_CONTAINERS:
            kill_list = event.data.get("kill_list") or []
            return bool(kill_list) and all(run_visible(event.collaboration_id, item)
                                           for item in kill_list)
        return False

    return accept


def _close_stream(state: AppState, stream_id: str, node_id: int) -> None:
    outbox = Outbox()
    now = utcnow()
    with state.session_factory.begin() as session:
        presence.close_stream(session=session, stream_id=stream_id, node_id=node_id, now=now,
                              live_after=presence.live_after(
                                  now, state.settings.presence_interval_seconds), outbox=outbox)
    outbox.flush_to(state.bus)


async def _stream(request: Request, state: AppState, accept: EventFilter,
                  node_stream: tuple[str, int] | None) -> AsyncIterator[str]:
    """``sync``, then the accepted events (``sync`` again whenever the subscriber must
    re-read its state), with keep-alives; a node's stream row is kept until it ends."""
    if node_stream is not None:
        state.streams.open(*node_stream)
    try:
        async with state.bus.subscribe(accept) as subscription:
            yield SYNC.to_sse()
            while not await request.is_disconnected():
                event = await subscription.get(timeout=state.settings.keepalive_seconds)
                yield PING if event is None else event.to_sse()
    finally:
        if node_stream is not None:
            state.streams.close(node_stream[0])
            with anyio.CancelScope(shield=True):
                try:
                    await run_in_threadpool(_close_stream, state, *node_stream)
                except Exception:  # the heartbeat drops the row, the sweep marks the node
                    log.exception("node_stream_close_failed", node_id=node_stream[1])


@router.get("/events", response_class=StreamingResponse, responses={
    **errors(403),
    200: {"description": "Server-Sent Events: ``sync`` first, then live events",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
})
async def stream_events(request: Request, state: StateDep, work: WorkDep,
                        identity: AnyPrincipal) -> StreamingResponse:
    """Stream events: first ``sync``, then live events, and ``: ping`` keep-alives."""
    accept = event_filter(identity)
    node_stream = None
    if isinstance(identity, NodeIdentity):
        node_stream = (uuid.uuid4().hex, identity.node_id)
        ip = request.client.host if request.client else None
        stream_id, node_id = node_stream

        def open_stream() -> None:  # committed in the same worker thread, before streaming
            presence.open_stream(session=work.session, stream_id=stream_id, node_id=node_id,
                                 replica=state.replica, ip=ip, outbox=work.outbox)
            work.commit()

        await run_in_threadpool(open_stream)
    return StreamingResponse(
        _stream(request, state, accept, node_stream), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
