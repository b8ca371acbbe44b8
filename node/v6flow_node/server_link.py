"""The node's link to the server: login, token refresh, REST calls and the event stream.

REST paths follow CONTRACT §4; the push channel is ``GET /api/events`` (Server-Sent Events,
read by :mod:`v6flow._sse`, the reader the client uses too). Requests are built from the
request models of :mod:`v6flow.schemas` and answers read into its response models. On every
(re)connect the server sends ``sync`` first, so the daemon re-fetches all open runs and no
run is lost to an event missed while disconnected.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from v6flow._http_errors import raise_for_response, transport_errors
from v6flow._retry import FOLLOW_EVENTS
from v6flow._sse import Event, aopen_stream
from v6flow.errors import AuthenticationError, ClientError, DeserializationError, ServerError
from v6flow.schemas import (
    BlobCreatedOut,
    BlobStoreStatusOut,
    ContainerTokenOut,
    ContainerTokenRequest,
    LogAppendOut,
    NodeLogin,
    NodeOut,
    Page,
    RunLogLines,
    RunOut,
    RunUpdate,
    TaskOut,
    TokenPairOut,
)

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
EventHandler = Callable[[Event], Awaitable[None]]

_REFRESH_MARGIN = 60.0  # seconds before expiry at which the token is renewed
#: What the node embeds when it lists its open runs: the task (image, databases, job) and
#: the input (which the server leaves out of run lists unless asked).
OPEN_RUN_INCLUDES = ("task", "input")
_STREAM_TIMEOUT = httpx.Timeout(5.0, read=35.0)  # the server pings every 10 s
#: Blob transfers: per read or write of one chunk, not for the whole stream.
_BLOB_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_OCTETS = "application/octet-stream"
#: How long the server's blob store status is reused (a restarted server may change it).
_BLOB_STATUS_SECONDS = 30.0


def _read(model: type[M], body: Any, what: str) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                           for e in exc.errors())
        raise DeserializationError(f"{what} answered something that is not a "
                                   f"{model.__name__}: {fields}") from None


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the node reads its own token's ``sub`` and ``exp``).

    Stdlib only: PyJWT would load ``cryptography`` (~10 MB of the node's memory) for this.

    Raises:
        ValueError: not a JWT with a JSON object as payload.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"not a JWT: {type(exc).__name__}") from None
    if not isinstance(claims, dict):
        raise ValueError("not a JWT: its payload is no JSON object")
    return claims


def embedded_task(run: RunOut) -> TaskOut:
    """The task embedded in an open run (``include=task``).

    Raises:
        DeserializationError: the server sent only a link to the task.
    """
    if not isinstance(run.task, TaskOut):
        raise DeserializationError(f"run {run.id} came without its task (include=task)")
    return run.task


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
        self._blob_status: tuple[BlobStoreStatusOut | None, float] = (None, 0.0)

    # --- authentication -------------------------------------------------------------------
    async def login(self) -> int:
        """Log in with the API key (``POST /token/node``) and return this node's id.

        Raises:
            AuthenticationError: the server does not recognise the key (or it is no UUID).
            ServerError: the server cannot be reached or failed.
        """
        try:
            body = NodeLogin.model_validate({"api_key": self._api_key})
        except ValidationError:
            raise AuthenticationError("the api_key is not a UUID") from None
        url = f"{self.server_url}/token/node"
        with transport_errors("POST", url):
            response = await self._client.post(url, json=body.model_dump(mode="json"))
        raise_for_response(response)
        self._store_tokens(_read(TokenPairOut, response.json(), "POST /token/node"))
        claims = unverified_claims(self._access_token)
        self.node_id = int(claims["sub"])
        return self.node_id

    def _store_tokens(self, pair: TokenPairOut) -> None:
        self._access_token = pair.access_token
        self._refresh_token = pair.refresh_token
        claims = unverified_claims(self._access_token)
        exp = claims.get("exp")
        self._expires_at = float(exp) if exp else float("inf")

    async def _renew(self) -> None:
        """Refresh the access token (``POST /token/refresh``), falling back to a new login."""
        async with self._login_lock:
            if time.time() < self._expires_at - _REFRESH_MARGIN:
                return  # another coroutine renewed it meanwhile
            url = f"{self.server_url}/token/refresh"
            try:
                with transport_errors("POST", url):
                    response = await self._client.post(
                        url, headers={"Authorization": f"Bearer {self._refresh_token}"})
                raise_for_response(response)
                self._store_tokens(_read(TokenPairOut, response.json(), "POST /token/refresh"))
            except (ClientError, DeserializationError, ValueError):
                await self.login()
            log.info("node token renewed")

    async def auth_header(self) -> dict[str, str]:
        """A valid ``Authorization`` header, renewing the token shortly before expiry."""
        if time.time() >= self._expires_at - _REFRESH_MARGIN:
            await self._renew()
        return {"Authorization": f"Bearer {self._access_token}"}

    # --- REST -----------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: BaseModel | None = None) -> Any:
        """Call ``<server_url>/<path>`` as this node and return the decoded JSON answer.

        ``body`` is sent with only the fields that were set. A 401 triggers one re-login and
        retry (the server may have restarted).

        Raises:
            ClientError: the matching subclass for the server's error answer.
        """
        url = f"{self.server_url}/{path.lstrip('/')}"
        json = None if body is None else body.model_dump(mode="json", exclude_unset=True)
        for attempt in (1, 2):
            with transport_errors(method, url):
                response = await self._client.request(
                    method, url, params=params, json=json, headers=await self.auth_header())
            if response.status_code == 401 and attempt == 1:
                async with self._login_lock:
                    await self.login()
                continue
            raise_for_response(response)
            return response.json() if response.content else None
        raise AssertionError("unreachable")  # pragma: no cover

    async def call(self, method: str, path: str, model: type[M], *,
                   params: dict[str, Any] | None = None, body: BaseModel | None = None) -> M:
        """:meth:`request`, its answer read as ``model``.

        Raises:
            ClientError: the server's error answer.
            DeserializationError: the answer does not match ``model``.
        """
        answer = await self.request(method, path, params=params, body=body)
        return _read(model, answer, f"{method} /{path}")

    async def get_node(self) -> NodeOut:
        """This node's own record (``GET /node/<id>``)."""
        return await self.call("GET", f"node/{self.node_id}", NodeOut)

    async def open_runs(self, task_id: int | None = None) -> list[RunOut]:
        """Every open run of this node (optionally of one task), all pages.

        Each run embeds its task and carries its input (:data:`OPEN_RUN_INCLUDES`).
        """
        params: dict[str, Any] = {"state": "open", "node_id": self.node_id,
                                  "include": list(OPEN_RUN_INCLUDES)}
        if task_id is not None:
            params["task_id"] = task_id
        runs: list[RunOut] = []
        page = 1
        while True:
            current = await self.call("GET", "run", Page[RunOut], params={**params, "page": page})
            runs.extend(current.data)
            if current.links.next is None or not current.data:
                return runs
            page += 1

    async def patch_run(self, run_id: int, update: RunUpdate) -> RunOut:
        """``PATCH /run/<id>`` with only the fields set in ``update``; the updated run."""
        return await self.call("PATCH", f"run/{run_id}", RunOut, body=update)

    async def container_token(self, task_id: int, image: str) -> str:
        """A container token for one task and its exact image (``POST /token/container``)."""
        request = ContainerTokenRequest(task_id=task_id, image=image)
        answer = await self.call("POST", "token/container", ContainerTokenOut, body=request)
        return answer.container_token

    async def post_log(self, run_id: int, lines: list[str]) -> None:
        """Append live log lines to a run (``POST /run/<id>/log``)."""
        await self.call("POST", f"run/{run_id}/log", LogAppendOut, body=RunLogLines(lines=lines))

    # --- blobs ----------------------------------------------------------------------------
    async def blob_status(self) -> BlobStoreStatusOut:
        """Whether the server keeps a blob store, and its threshold (``GET /blobstream/status``).

        A server that refuses the question (an older one: 404) has none, as v4 decides. The
        answer is kept :data:`_BLOB_STATUS_SECONDS` (every finished run asks).

        Raises:
            ServerError: the server cannot be reached or failed.
        """
        cached, at = self._blob_status
        if cached is not None and time.monotonic() - at < _BLOB_STATUS_SECONDS:
            return cached
        try:
            status = await self.call("GET", "blobstream/status", BlobStoreStatusOut)
        except ServerError:
            raise  # unreachable or failing: ask again next time
        except ClientError:
            status = BlobStoreStatusOut(blob_store_enabled=False)
        self._blob_status = (status, time.monotonic())
        return status

    async def upload_blob(self, chunks: AsyncIterable[bytes]) -> str:
        """Stream ``chunks`` to ``POST /blobstream``; the UUID that names the upload.

        The stream is sent once (chunked), never buffered; a refusal is not retried here.

        Raises:
            ClientError: the server refused (e.g. 413 over ``blobs.max_blob_bytes``) or failed.
        """
        url = f"{self.server_url}/blobstream"
        headers = {**(await self.auth_header()), "Content-Type": _OCTETS}
        with transport_errors("POST", url):
            response = await self._client.post(url, content=_aiter(chunks), headers=headers,
                                               timeout=_BLOB_TIMEOUT)
        raise_for_response(response)
        return _read(BlobCreatedOut, response.json(), "POST /blobstream").uuid

    @contextlib.asynccontextmanager
    async def download_blob(self, blob_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open ``GET /blobstream/<uuid>``; yields its bytes as they arrive.

        Raises:
            ClientError: the server refused (403, 404) or failed.
        """
        url = f"{self.server_url}/blobstream/{blob_id}"
        with transport_errors("GET", url):
            async with self._client.stream("GET", url, headers=await self.auth_header(),
                                           timeout=_BLOB_TIMEOUT) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_response(response)
                yield response.aiter_bytes()

    # --- events ---------------------------------------------------------------------------
    async def listen(self, handler: EventHandler) -> None:
        """Follow ``GET /events`` forever, reconnecting; call ``handler`` per event.

        A lost stream is reconnected at once; failing connections are retried under
        :data:`~v6flow._retry.FOLLOW_EVENTS`. Runs until cancelled. Handler exceptions are
        logged, never fatal.
        """
        while True:
            await FOLLOW_EVENTS.acall(lambda: self._follow(handler))

    async def _follow(self, handler: EventHandler) -> None:
        """One connection of the event stream; returns when it ends, or breaks after its first
        event (``sync``), so that the next connection starts the backoff afresh.

        Raises:
            ClientError: the connection failed (a refused token first triggers a re-login).
        """
        synced = False
        try:
            async with aopen_stream(self._client, f"{self.server_url}/events",
                                    headers=await self.auth_header(),
                                    timeout=_STREAM_TIMEOUT) as events:
                log.info("event stream connected")
                async for event in events:
                    if event is not None:
                        synced = True
                        await self._dispatch(handler, event)
        except AuthenticationError:
            log.warning("event stream refused the token; logging in again")
            await self.login()
            raise
        except (ServerError, httpx.HTTPError) as exc:
            if not synced:
                raise
            log.warning("event stream lost; reconnecting", error=str(exc) or type(exc).__name__)

    @staticmethod
    async def _dispatch(handler: EventHandler, event: Event) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("event handler failed", event_name=event.name)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()


async def _aiter(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """An async iterator over ``chunks`` (what httpx streams as a request body)."""
    async for chunk in chunks:
        yield chunk
