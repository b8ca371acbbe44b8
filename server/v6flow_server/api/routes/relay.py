"""The peer relay's WebSockets (``/relay/listen``, ``/relay/dial``, ``/relay/accept/<conn>``).

Nodes open them with the container token of one of their runs in ``Authorization``; how the
hub pairs and splices them is in :mod:`v6flow_server.relay`, who may reach whom in
:mod:`v6flow_server.services.ports`. A refused handshake gets a JSON ``{"msg"}`` answer with the
status of the domain error (401 bad token, 403 other job, 404 unknown run or port, 409 peer
not listening, 429 too many connections, 502 peer refused).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import structlog
from fastapi import APIRouter, WebSocket
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from v6flow.schemas import MAX_ID
from v6flow_server.auth.principals import ContainerIdentity
from v6flow_server.errors import (
    BadRequestError,
    ForbiddenError,
    ServerDomainError,
    UnauthorizedError,
)
from v6flow_server.services import ports
from v6flow_server.services.auth import resolve_identity
from v6flow_server.state import AppState

T = TypeVar("T")
router = APIRouter(tags=["relay"])
log = structlog.get_logger(__name__)


def _state(websocket: WebSocket) -> AppState:
    state: AppState = websocket.app.state.v6flow
    return state


def _authorized(state: AppState, header: str | None,
                check: Callable[[Session, ContainerIdentity], T]) -> tuple[ContainerIdentity, T]:
    """Resolve a handshake's bearer token and apply ``check`` (blocking: use a thread).

    Raises:
        UnauthorizedError: missing or invalid token.
        ForbiddenError: not a container token.
        ServerDomainError: whatever ``check`` raises.
    """
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("Authorization header must be 'Bearer <container token>'")
    with state.session_factory() as session:
        identity = resolve_identity(session=session, issuer=state.token_issuer(),
                                    token=token.strip())
        if not isinstance(identity, ContainerIdentity):
            raise ForbiddenError("The relay is only for algorithm containers' tokens")
        return identity, check(session, identity)


def _int_param(websocket: WebSocket, name: str, high: int) -> int:
    raw = websocket.query_params.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= high:
        raise BadRequestError(f"{name}: must be an integer from 1 to {high}")
    return value


async def _deny(websocket: WebSocket, exc: ServerDomainError) -> None:
    """Refuse the handshake with the error's status and ``{"msg"}``."""
    response = JSONResponse({"msg": exc.msg}, status_code=exc.status_code,
                            headers=exc.headers)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:  # a server without the denial extension
        await websocket.close(code=1008, reason=exc.msg[:120])


def _listen_check(session: Session, identity: ContainerIdentity) -> int:
    return ports.authorize_listen(session=session, container=identity)


@router.websocket("/relay/listen")
async def relay_listen(websocket: WebSocket) -> None:
    """Hold the listen socket of the caller's run: connection requests arrive here."""
    state = _state(websocket)
    header = websocket.headers.get("authorization")

    try:
        _, run_id = await run_in_threadpool(_authorized, state, header, _listen_check)
    except ServerDomainError as exc:
        await _deny(websocket, exc)
        return
    try:
        await websocket.accept()
    except OSError:
        return
    async with state.relay.listen(run_id, websocket):
        while True:
            message = await websocket.receive()
            if message["type"] != "websocket.receive":
                return
            if message.get("text"):
                state.relay.refused(message["text"])


@router.websocket("/relay/dial")
async def relay_dial(websocket: WebSocket) -> None:
    """One connection of the caller's run to ``port`` of run ``run_id`` of the same job."""
    state = _state(websocket)
    header = websocket.headers.get("authorization")
    try:
        run_id = _int_param(websocket, "run_id", MAX_ID)
        port = _int_param(websocket, "port", 65535)

        def dial_check(session: Session, identity: ContainerIdentity) -> ports.RelayTarget:
            return ports.authorize_dial(session=session, container=identity, run_id=run_id,
                                        port=port)

        identity, target = await run_in_threadpool(_authorized, state, header, dial_check)
        dialler = (identity.task_id, identity.organization_id)
        async with state.relay.connect(target, dialler=dialler) as peer:
            try:
                await websocket.accept()
            except OSError:  # the dialling node went away while the peer accepted
                return
            log.info("relay connection", job_id=target.job_id, run_id=target.run_id,
                     port=target.port, from_task_id=identity.task_id,
                     from_organization_id=identity.organization_id)
            sent, received = await state.relay.splice(websocket, peer)
            log.info("relay connection closed", run_id=target.run_id, port=target.port,
                     bytes_to_peer=sent, bytes_from_peer=received)
    except ServerDomainError as exc:
        log.info("relay dial refused", reason=exc.msg, status=exc.status_code)
        with contextlib.suppress(OSError):
            await _deny(websocket, exc)


@router.websocket("/relay/accept/{conn}")
async def relay_accept(websocket: WebSocket, conn: str) -> None:
    """The listening run's half of connection ``conn``."""
    state = _state(websocket)
    header = websocket.headers.get("authorization")

    try:
        _, run_id = await run_in_threadpool(_authorized, state, header, _listen_check)
        pending = state.relay.claim(conn[:64], run_id)
    except ServerDomainError as exc:
        await _deny(websocket, exc)
        return
    try:
        await websocket.accept()
    except OSError:  # the listening node went away: the dial gets its 502 at the timeout
        return
    if pending.accepted.done():  # the dialling side gave up meanwhile
        await websocket.close(code=1000)
        return
    pending.accepted.set_result(websocket)
    await pending.done.wait()
