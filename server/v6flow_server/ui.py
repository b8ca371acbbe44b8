"""The web UI: the static files of ``v6flow_ui`` served at ``/`` next to the API at ``/api``.

The UI is plain ES modules (no build step) that talk only to the REST API. It is installed as
the router's *default* handler, i.e. it answers only what no API route matched, so the API's
own 404 (unknown ``/api/...`` path) and 405 (known path, other method) answers are unchanged:

- ``GET``/``HEAD`` of a file of the UI with a known type: that file;
- ``GET``/``HEAD`` of any other path outside ``/api`` without a file suffix: ``index.html``
  (client-side routes such as ``/tasks/12``);
- everything else: the router's usual 404.

Every answer carries a strict Content-Security-Policy (scripts, styles and connections from
this origin only; no inline code; Trusted Types enforced; no framing) and ``Cache-Control:
no-cache`` with an ETag: file names carry no content hash, so a browser revalidates each file
(a cheap 304) and never runs a stale module after an upgrade.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import anyio
import structlog
from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

#: The distribution (and import package) that holds the UI's files (ui/ in the repository).
UI_PACKAGE = "v6flow_ui"
API_PREFIX = "/api"
INDEX = "index.html"

#: The only files served, by suffix, with their media type (``.sh`` etc. are never served).
MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
))

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-cache",
}


class UiFallback:
    """ASGI app answering what no API route matched: UI files, else ``index.html``."""

    def __init__(self, directory: Path, not_found: ASGIApp) -> None:
        """Serve ``directory``; hand everything that is not the UI's to ``not_found``."""
        self._files = StaticFiles(directory=directory)
        self._not_found = not_found

    def _relative_path(self, scope: Scope) -> str | None:
        """The file to answer with, relative to the UI folder; None when not the UI's."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        path: str = scope["path"]
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return None
        relative = path.lstrip("/")
        name = relative.rsplit("/", 1)[-1]
        if not relative or "." not in name:
            return INDEX  # a client-side route
        suffix = "." + name.rsplit(".", 1)[-1].lower()
        return relative if suffix in MEDIA_TYPES else None

    async def _response(self, relative: str, scope: Scope) -> Response | None:
        full_path, stat_result = await anyio.to_thread.run_sync(self._files.lookup_path,
                                                                relative)
        if stat_result is None or not os.path.isfile(full_path):
            return None
        suffix = "." + relative.rsplit(".", 1)[-1].lower()
        response = FileResponse(full_path, stat_result=stat_result,
                                media_type=MEDIA_TYPES[suffix])
        if self._files.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a UI file or ``index.html``; otherwise the router's 404."""
        relative = self._relative_path(scope)
        response = None
        if relative is not None:
            try:
                response = await self._response(relative, scope)
            except (OSError, ValueError):  # a name too long, a NUL byte: not a UI file
                response = None
        if response is None:
            await self._not_found(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
            await send(message)

        await response(scope, receive, send_with_headers)


def ui_directory() -> Path | None:
    """The folder of the installed ``v6flow_ui`` package; None when it is not installed.

    A wheel and an editable install alike put the package's files in one folder on disk.
    """
    try:
        root = files(UI_PACKAGE)
    except ModuleNotFoundError:
        return None
    return Path(str(root))


def install_ui(app: FastAPI, directory: Path | None = None) -> None:
    """Serve the web UI at ``/`` for every path no API route answers.

    ``directory`` defaults to the installed ``v6flow_ui`` package. A server installed without
    the UI (no ``v6flow-ui``, or no ``index.html`` in ``directory``) serves the API only.
    """
    directory = directory if directory is not None else ui_directory()
    if directory is None or not (directory / INDEX).is_file():
        log.warning("web_ui_missing", directory=str(directory) if directory else None,
                    package=UI_PACKAGE)
        return
    app.router.default = UiFallback(directory, app.router.not_found)
