"""The access log: one structured line per HTTP request, secrets left out (pure ASGI middleware).

Each request ends in one ``request`` log entry with ``method``, ``path``, ``query`` (when there
is one), ``status``, ``duration_ms``, ``principal_type``/``principal_id`` (from a valid bearer
token, when there is one) and ``client`` (the peer address). An event stream is one request:
its line is written when the stream closes.

Nothing secret is written: no header at all (so no ``Authorization``), no body (so no password
or API key), and query values whose name looks like a credential (``token``, ``api_key``,
``password``…) are replaced by ``[redacted]``. The middleware also binds the client address
for the audit trail (:func:`v6flow_server.services.audit.client_address`).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from v6flow_server.auth.tokens import TokenType
from v6flow_server.errors import UnauthorizedError
from v6flow_server.services import audit

log = structlog.get_logger("server.access")

#: Query parameters whose values are never written (matched as substrings of the name).
SECRET_NAMES = ("token", "key", "password", "secret", "auth", "code", "signature", "jwt")
REDACTED = "[redacted]"
#: Longest path and query written (a line stays bounded whatever the URL).
MAX_TEXT = 1024


def redact_query(raw: bytes) -> str:
    """The query string with the values of credential-like parameters replaced."""
    if not raw:
        return ""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    cleaned = [(name, REDACTED if any(s in name.lower() for s in SECRET_NAMES) else value)
               for name, value in pairs]
    return urlencode(cleaned)[:MAX_TEXT]


def _principal(scope: Scope) -> tuple[str | None, int | None]:
    """Type and id of the caller of a validly signed bearer token (else ``(None, None)``).

    A container is identified by its run (``run_id``), a user or node by its id.
    """
    header = next((value for name, value in scope.get("headers", [])
                   if name == b"authorization"), b"")
    scheme, _, token = header.decode("latin-1").partition(" ")
    state = getattr(getattr(scope.get("app"), "state", None), "v6flow", None)
    issuer = getattr(state, "issuer", None)
    if scheme.lower() != "bearer" or not token.strip() or issuer is None:
        return None, None
    for expected in (TokenType.ACCESS, TokenType.REFRESH):
        try:
            claims: dict[str, Any] = issuer.decode(token.strip(), expected_type=expected)
        except UnauthorizedError:
            continue
        client_type, sub = claims.get("client_type"), claims.get("sub")
        subject = sub.get("run_id") if isinstance(sub, dict) else sub
        return (str(client_type) if client_type else None,
                subject if isinstance(subject, int) else None)
    return None, None


class AccessLogMiddleware:
    """Writes one ``request`` line per HTTP request (register with ``app.add_middleware``)."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then log it (also when the app raised)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        peer = scope.get("client")
        client = peer[0] if peer else None
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            with audit.client_address(client):
                await self.app(scope, receive, send_status)
        except BaseException:
            status = status or 500
            raise
        finally:
            principal_type, principal_id = _principal(scope)
            query = redact_query(scope.get("query_string", b""))
            log.info("request", method=scope.get("method"), path=scope["path"][:MAX_TEXT],
                     **({"query": query} if query else {}), status=status,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2),
                     principal_type=principal_type, principal_id=principal_id, client=client)
