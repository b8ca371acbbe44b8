"""HTTP error mapping shared by every v6flow HTTP caller (client, algorithm client, node)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from v6flow.errors import (
    AuthenticationError,
    BadRequest,
    ClientError,
    NotFound,
    PermissionDenied,
    ServerError,
)

_BY_STATUS: dict[int, type[ClientError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    422: BadRequest,
}


def server_message(response: httpx.Response) -> str:
    """The server's ``msg`` of an error body, or a short description when there is none.

    The body must already be read.
    """
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("msg"), str):
        return str(body["msg"])
    text = response.text.strip()
    return text[:200] if text else (response.reason_phrase or f"HTTP {response.status_code}")


def error_for_response(response: httpx.Response) -> ClientError | None:
    """Return the error an error status stands for, or ``None`` for a success (< 400).

    The body must already be read.
    """
    code = response.status_code
    if code < 400:
        return None
    cls = _BY_STATUS.get(code) or (ServerError if code >= 500 else BadRequest)
    request = response.request
    return cls(server_message(response), status_code=code, method=request.method,
               url=str(request.url))


def raise_for_response(response: httpx.Response) -> None:
    """Raise the mapped ``ClientError`` for an error status (body must be read)."""
    error = error_for_response(response)
    if error is not None:
        raise error


@contextmanager
def transport_errors(method: str, url: str) -> Iterator[None]:
    """Turn httpx transport failures (refused, timeout, broken stream) into ``ServerError``."""
    try:
        yield
    except httpx.TransportError as exc:
        raise ServerError(f"cannot reach the server: {type(exc).__name__}: {exc}",
                          method=method, url=url) from exc
