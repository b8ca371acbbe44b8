"""The one place where errors become HTTP responses; every body is JSON ``{"msg": ...}``."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.errors import ServerDomainError

log = structlog.get_logger(__name__)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServerDomainError)
    return JSONResponse({"msg": exc.msg}, status_code=exc.status_code)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(tuple(e.get("loc", ()))), "msg": str(e.get("msg", "")),
         "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['msg']}" for e in errors)
    return JSONResponse({"msg": f"Request is incorrect: {summary}", "errors": errors},
                        status_code=400)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"msg": str(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("integrity_error", error=str(exc.__cause__ or exc)[:200])
    return JSONResponse({"msg": "The request conflicts with an existing object"},
                        status_code=409)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected_error", path=request.url.path, method=request.method)
    return JSONResponse({"msg": "An unexpected error occurred on the server!"}, status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    """Attach every handler to ``app``."""
    app.add_exception_handler(ServerDomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unexpected_error)
