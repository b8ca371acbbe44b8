"""The node's link to the server: login, token refresh, REST calls and the event stream.

REST paths follow CONTRACT §4; the push channel is ``GET /api/events`` (Server-Sent Events).
On every (re)connect the server sends ``sync`` first, so the daemon re-fetches all open runs
and no run is lost to an event missed while disconnected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import structlog

from v6flow._http_errors import raise_for_response
from v6flow.errors import (
    AuthenticationError,
    ClientError,
    ServerError,
)

log = structlog.get_logger(__name__)

EventHandler = Callable[[str, dict[str, Any]], Awaitable[None]]

_REFRESH_MARGIN = 60.0  # seconds before expiry at which the token is renewed


class ServerLink:
    """Async REST client of one node, with login and automatic token renewal."""

    def __init__(self, *, server_url: str, api_key: str,
                 client: httpx.AsyncClient | None = None) -> None:
        """Create the link (no I/O yet; call :meth:`login`).

        Args:
            server_url: the server API base, e.g. ``http://127.0.0.1:7601/api``.
            api_key: the node's API key.
            client: optional shared client (one is created otherwise).
        """
        self.server_url = server_url.rstrip("/")
        self._api_key = api_key
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        self._access_token = ""
        self._refresh_token = ""
        self._expires_at = 0.0
        self._login_lock = asyncio.Lock()
        self.node_id: int | None = None

    # --- authentication -------------------------------------------------------------------
    async def login(self) -> int:
        """Log in with the API key (``POST /token/node``) and return this node's id.

        Raises:
            AuthenticationError: the server does not recognise the key.
            ServerError: the server cannot be reached or failed.
        """
        try:
            response = await self._client.post(f"{self.server_url}/token/node",
                                               json={"api_key": self._api_key})
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the server: {exc}") from exc
        raise_for_response(response)
        self._store_tokens(response.json())
        claims = jwt.decode(self._access_token, options={"verify_signature": False})
        self.node_id = int(claims["sub"])
        return self.node_id

    def _store_tokens(self, body: dict[str, Any]) -> None:
        self._access_token = body["access_token"]
        self._refresh_token = body.get("refresh_token", self._refresh_token)
        claims = jwt.decode(self._access_token, options={"verify_signature": False})
        exp = claims.get("exp")
        self._expires_at = float(exp) if exp else float("inf")

    async def _renew(self) -> None:
        """Refresh the access token (``POST /token/refresh``), falling back to a new login."""
        async with self._login_lock:
            if time.time() < self._expires_at - _REFRESH_MARGIN:
                return  # another coroutine renewed it meanwhile
            try:
                response = await self._client.post(
                    f"{self.server_url}/token/refresh",
                    headers={"Authorization": f"Bearer {self._refresh_token}"},
                )
                raise_for_response(response)
                self._store_tokens(response.json())
            except (ClientError, httpx.HTTPError, KeyError, ValueError):
                await self.login()
            log.info("node token renewed")

    async def auth_header(self) -> dict[str, str]:
        """A valid ``Authorization`` header, renewing the token shortly before expiry."""
        if time.time() >= self._expires_at - _REFRESH_MARGIN:
            await self._renew()
        return {"Authorization": f"Bearer {self._access_token}"}

    # --- REST -----------------------------------------------------------------------------
    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``<server_url>/<path>`` as this node and return the JSON answer.

        A 401 triggers one re-login and retry (the server may have restarted).

        Raises:
            ClientError: the matching subclass for the server's error answer.
        """
        for attempt in (1, 2):
            try:
                response = await self._client.request(
                    method, f"{self.server_url}/{path.lstrip('/')}",
                    headers=await self.auth_header(), **kwargs,
                )
            except httpx.HTTPError as exc:
                raise ServerError(f"cannot reach the server: {exc}", method=method,
                                  url=path) from exc
            if response.status_code == 401 and attempt == 1:
                async with self._login_lock:
                    await self.login()
                continue
            raise_for_response(response)
            return response.json() if response.content else None
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_node(self) -> dict[str, Any]:
        """This node's own record (``GET /node/<id>``)."""
        result: dict[str, Any] = await self.request("GET", f"node/{self.node_id}")
        return result

    async def open_runs(self, task_id: int | None = None) -> list[dict[str, Any]]:
        """Every open run of this node (optionally of one task), task and input included."""
        params: dict[str, Any] = {"state": "open", "node_id": self.node_id,
                                  "include": ["task", "input"]}
        if task_id is not None:
            params["task_id"] = task_id
        runs: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.request("GET", "run", params={**params, "page": page})
            runs.extend(body.get("data", []))
            if not (body.get("links") or {}).get("next") or not body.get("data"):
                return runs
            page += 1

    async def patch_run(self, run_id: int, fields: dict[str, Any]) -> None:
        """``PATCH /run/<id>`` with only the given fields."""
        await self.request("PATCH", f"run/{run_id}", json=fields)

    async def container_token(self, task_id: int, image: str) -> str:
        """A container token for one task and its exact image (``POST /token/container``)."""
        body = await self.request("POST", "token/container",
                                  json={"task_id": task_id, "image": image})
        return str(body["container_token"])

    async def post_log(self, run_id: int, lines: list[str]) -> None:
        """Append live log lines to a run (``POST /run/<id>/log``)."""
        await self.request("POST", f"run/{run_id}/log", json={"lines": lines})

    # --- events ---------------------------------------------------------------------------
    async def listen(self, handler: EventHandler, *, max_backoff: float = 10.0) -> None:
        """Follow ``GET /events`` forever, reconnecting with backoff; call ``handler`` per event.

        Runs until cancelled. Handler exceptions are logged, never fatal.
        """
        backoff = 0.5
        while True:
            try:
                await self._stream(handler)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except AuthenticationError:
                log.warning("event stream refused the token; logging in again")
                try:
                    await self.login()
                except ClientError as exc:
                    log.warning("re-login failed", error=str(exc))
            except (httpx.HTTPError, ClientError) as exc:
                log.warning("event stream lost", error=str(exc) or type(exc).__name__,
                            retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)

    async def _stream(self, handler: EventHandler) -> None:
        """One connection of the event stream; returns when the server closes it."""
        timeout = httpx.Timeout(5.0, read=35.0)  # the server pings every 10 s
        async with self._client.stream("GET", f"{self.server_url}/events",
                                       headers=await self.auth_header(),
                                       timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise_for_response(response)
            log.info("event stream connected")
            event, data = "message", list[str]()
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        await self._dispatch(handler, event, "\n".join(data))
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))

    @staticmethod
    async def _dispatch(handler: EventHandler, event: str, raw: str) -> None:
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            log.warning("event with non-JSON data ignored", event_name=event)
            return
        try:
            await handler(event, payload if isinstance(payload, dict) else {"data": payload})
        except Exception:
            log.exception("event handler failed", event_name=event)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()
