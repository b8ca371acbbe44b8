"""The one place where errors become HTTP responses; every body is JSON ``{"msg": ...}``.

- domain errors (:mod:`v6flow_server.errors`) answer their own status;
- a request that does not match its schema answers 400 naming the fields (not FastAPI's 422);
- 404/405 from routing are re-shaped, and a 405 lists in ``Allow`` every method of the path;
- a value the database cannot hold (a NUL character, an out-of-range number) is a 400;
- anything else is logged with its traceback and answered 500 by :class:`CatchAllMiddleware`,
  which keeps the exception from reaching uvicorn, so the keep-alive connection survives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from v6flow_server.errors import ServerDomainError

log = structlog.get_logger(__name__)
INTERNAL_ERROR = "An unexpected error occurred on the server!"


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    error = exc if isinstance(exc, ServerDomainError) else ServerDomainError(INTERNAL_ERROR)
    return JSONResponse({"msg": error.msg}, status_code=error.status_code,
                        headers=error.headers or None)


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The 400 body for pydantic errors: a one-line summary and the fields."""
    fields = [
        {"field": _field(tuple(e.get("loc", ()))), "msg": str(e.get("msg", "")),
         "type": str(e.get("type", ""))}
        for e in errors
    ]
    summary = "; ".join(f"{e['field']}: {e['msg']}" for e in fields)
    return {"msg": f"Request is incorrect: {summary}", "errors": fields}


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    errors = list(exc.errors()) if isinstance(exc, RequestValidationError) else []
    return JSONResponse(validation_body(errors), status_code=400)


MethodTable = list[tuple[re.Pattern[str], frozenset[str]]]


def method_table(routers: Iterable[APIRouter], prefix: str) -> MethodTable:
    """Each route's path pattern with its methods (FastAPI's included routers hide them)."""
    return [(compile_path(prefix + route.path)[0], frozenset(route.methods or ()))
            for router in routers for route in router.routes if isinstance(route, APIRoute)]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (for the ``Allow`` header of a 405)."""
    table: MethodTable = getattr(request.app.state, "method_table", [])
    methods = {m for pattern, ms in table if pattern.match(request.url.path) for m in ms}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        return await _domain_error(request, exc)
    headers = dict(exc.headers or {})
    msg = str(exc.detail)
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
        msg = f"Method {request.method} is not allowed here (allowed: {headers['Allow']})"
    elif exc.status_code == 404 and msg == "Not Found":
        msg = f"No such resource: {request.url.path}"
    return JSONResponse({"msg": msg}, status_code=exc.status_code, headers=headers or None)


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("integrity_error", error=str(getattr(exc, "orig", exc))[:200])
    return JSONResponse({"msg": "The request conflicts with an existing object"},
                        status_code=409)


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("data_error", error=str(getattr(exc, "orig", exc))[:200])
    return JSONResponse(
        {"msg": "A value of the request cannot be stored (out of range, or it holds a NUL "
                "character)"}, status_code=400)


class CatchAllMiddleware:
    """Answer 500 for an unhandled exception instead of letting it reach the server.

    Starlette's own 500 handler re-raises after answering, and uvicorn then closes the
    connection: the next request on that keep-alive connection was reset.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; on an exception before the answer started, answer 500 ourselves."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unexpected_error", path=scope.get("path"), method=scope.get("method"))
            if started:
                raise
            response = JSONResponse({"msg": INTERNAL_ERROR}, status_code=500)
            await response(scope, receive, send)


def register_error_handlers(app: FastAPI) -> None:
    """Attach every handler to ``app``."""
    app.add_exception_handler(ServerDomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_middleware(CatchAllMiddleware)
