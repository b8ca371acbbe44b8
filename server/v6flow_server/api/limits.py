"""Request body limits: a body larger than its route allows is answered 413 before it is read.

:class:`BodyLimitMiddleware` is pure ASGI. It answers 413 ``{"msg"}`` at once when the
``Content-Length`` header announces too much, and otherwise counts the body as the app reads
it (a chunked body has no length), stopping the read at the limit with :class:`BodyTooLarge`.
Nothing is parsed before that: FastAPI reads the whole body before it resolves the caller's
token, so without this a 100 MB anonymous body was parsed before the 401.

Every route has :attr:`~v6flow_server.settings.ServerSettings.max_body_bytes`. A few routes need
more
(:func:`route_limits`): a raised limit applies only when the request carries a valid access
token of the right client type, so an anonymous caller never gets past the default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from v6flow_server.auth.tokens import TokenType
from v6flow_server.errors import UnauthorizedError
from v6flow_server.settings import ServerSettings
from v6flow_server.state import AppState

#: Resolves a bearer token to its client type (``user``, ``node``, ``container``) or None.
ClientTypeOf = Callable[[str], str | None]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit (FastAPI re-raises it)."""

    def __init__(self, limit: int) -> None:
        """Remember the limit for the message."""
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    """The ``msg`` of a 413."""
    return f"The request body is larger than this route accepts ({limit} bytes)"


@dataclass(frozen=True)
class RouteLimit:
    """A raised body limit for one method and path, for some token client types."""

    method: str
    pattern: re.Pattern[str]
    limit: int
    client_types: frozenset[str]


def route_limits(settings: ServerSettings, prefix: str) -> list[RouteLimit]:
    """The routes that legitimately take more than ``max_body_bytes``."""
    return [
        RouteLimit("POST", re.compile(rf"^{prefix}/task/?$"), settings.max_task_body_bytes,
                   frozenset({"user", "container"})),
        RouteLimit("PATCH", re.compile(rf"^{prefix}/run/\d+/?$"),
                   settings.max_result_body_bytes, frozenset({"node"})),
        RouteLimit("POST", re.compile(rf"^{prefix}/blobstream/?$"),
                   settings.blobs.max_blob_bytes, frozenset({"user", "node", "container"})),
        *(RouteLimit(method, re.compile(rf"^{prefix}/prefect/"), settings.prefect.max_body_bytes,
                     frozenset({"container"})) for method in ("POST", "PATCH")),
    ]


def token_client_type(state: AppState) -> ClientTypeOf:
    """Check an access token's signature and lifetime (no database) and read its client type."""

    def client_type(token: str) -> str | None:
        if state.issuer is None:
            return None
        try:
            claims = state.issuer.decode(token, expected_type=TokenType.ACCESS)
        except UnauthorizedError:
            return None
        value = claims.get("client_type")
        return value if isinstance(value, str) else None

    return client_type


class BodyLimitMiddleware:
    """Answer 413 for a body over its route's limit, without reading it (see module doc)."""

    def __init__(self, app: ASGIApp, *, default: int, routes: Sequence[RouteLimit],
                 client_type_of: ClientTypeOf) -> None:
        """Wrap ``app`` with the default limit and the raised ones."""
        self.app = app
        self.default = default
        self.routes = tuple(routes)
        self.client_type_of = client_type_of

    def limit_for(self, scope: Scope, headers: Headers) -> int:
        """The body limit of this request."""
        method, path = scope.get("method", ""), scope.get("path", "")
        for route in self.routes:
            if route.method == method and route.pattern.match(path):
                scheme, _, token = headers.get("authorization", "").partition(" ")
                if scheme.lower() == "bearer" and token.strip() and \
                        self.client_type_of(token.strip()) in route.client_types:
                    return route.limit
                return self.default
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse by ``Content-Length``, or count the streamed body and stop at the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limit_for(scope, headers)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(limit, scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(limit, scope, receive, send)


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    # ``Connection: close``: the unread rest of the body must not be taken for a request.
    response = JSONResponse({"msg": too_large_message(limit)}, status_code=413,
                            headers={"Connection": "close"})
    await response(scope, receive, send)


def install_body_limits(app: FastAPI, state: AppState, prefix: str) -> None:
    """Register :class:`BodyLimitMiddleware` with the limits of ``state.settings``."""
    app.add_middleware(BodyLimitMiddleware, default=state.settings.max_body_bytes,
                       routes=route_limits(state.settings, prefix),
                       client_type_of=token_client_type(state))
