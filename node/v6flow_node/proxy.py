"""What algorithm containers see at ``HOST:PORT``: a proxy to the server for what they may use.

Routes are at the root (``API_PATH=""``). A request whose method and path are on the
allow-list (:data:`ALLOWED`: the AlgorithmClient surface of CONTRACT §2.2, plus what
``v6flow.algorithm`` and central Prefect flows call) is forwarded to ``<server_url>/<path>``
with its method, query, body and the caller's ``Authorization`` header (the container token),
and the server's status and body come back unchanged. Anything else (token endpoints, users,
roles, nodes, run updates, ``..`` tricks) gets 403 ``{"msg"}`` from the proxy itself and never
reaches the server. ``GET events`` (the push channel
a central function uses to wait for its subtasks) is streamed through, not buffered, and so
are blobs (``POST blobstream``, ``GET blobstream/<uuid>``): an upload is base64-encoded on its
way to the server and a download decoded on its way back, chunk by chunk, as vantage6 4.x's
proxy does for an unencrypted collaboration (the container sees raw payload bytes). A central
flow's Prefect API requests (``prefect/...``: its own flow run, logs, events, artifacts; the
server decides which flow runs are its own) are streamed both ways as they are. When
the server cannot be reached the proxy answers JSON ``{"msg": …}`` (never HTML), because
the algorithm client calls ``response.json()`` on every answer (CONTRACT §2.1, §2.3).

The answer of ``GET vpn/algorithm/addresses`` is handed to an :class:`AddressBook` (the
node's peer relay, :mod:`v6flow_node.relay`) when there is one: it turns each peer's address into a
loopback address of the caller that the node relays (docs/p2p.md).

In an encrypted collaboration (the node has a key) the proxy does what the v4 proxy does
for containers, which never hold a key: ``POST task`` encrypts each ``organizations[].input``
(base64 JSON from the container) for its target organization, and ``GET result`` /
``GET result/<id>`` hand back each result decrypted, as base64 JSON (:class:`ContainerCrypto`).
A result that cannot be decrypted is a 502 naming the run, never its ciphertext or a guess.

The proxy listens on a unix socket; the network sidecar forwards ``127.0.0.1:8080`` to it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from v6flow import _blobstream as blobstream
from v6flow.crypto import Scheme, scheme_of
from v6flow.errors import DeserializationError, EncryptionError
from v6flow_node.encryption import NodeEncryption
from v6flow_node.errors import ProxyError
from v6flow_node.runtime.identity import give_to_algorithm

log = structlog.get_logger(__name__)

_ID = r"[1-9][0-9]{0,18}"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: ``(method, path)`` an algorithm container may call; paths without the leading slash.
ALLOWED: tuple[tuple[str, str], ...] = (
    ("GET", "health"),
    ("GET", "version"),
    ("GET", "organization"),
    ("GET", f"organization/{_ID}"),
    ("GET", f"collaboration/{_ID}"),
    ("GET", "study"),
    ("GET", f"study/{_ID}"),
    ("POST", "task"),
    ("GET", f"task/{_ID}"),
    ("GET", f"task/{_ID}/status"),
    ("POST", "kill/task"),  # a central flow stops its own subtasks on timeout
    ("GET", "run"),
    ("GET", f"run/{_ID}"),
    ("GET", "result"),
    ("GET", f"result/{_ID}"),
    ("GET", "vpn/algorithm/addresses"),
    ("GET", "blobstream/status"),
    ("GET", f"blobstream/{_UUID}"),
    ("POST", "blobstream"),
    ("GET", "events"),  # push channel of central flows, scoped to the job by the server
    # A central flow's own Prefect flow run (PREFECT_API_URL=<proxy>/prefect); the server
    # checks that every flow run named is the container's
    # (v6flow_server.services.prefect_access).
    ("GET", "prefect/admin/version"),
    ("GET", "prefect/admin/storage"),
    ("GET", "prefect/health"),
    ("GET", "prefect/csrf-token"),
    ("POST", "prefect/flows/"),
    ("GET", f"prefect/flows/{_UUID}"),
    ("POST", "prefect/flow_runs/"),
    ("GET", f"prefect/flow_runs/{_UUID}"),
    ("PATCH", f"prefect/flow_runs/{_UUID}"),
    ("POST", f"prefect/flow_runs/{_UUID}/set_state"),
    ("PATCH", f"prefect/flow_runs/{_UUID}/labels"),
    ("POST", "prefect/logs/"),
    ("POST", "prefect/events"),
    ("POST", "prefect/artifacts/"),
    ("PATCH", f"prefect/artifacts/{_UUID}"),
)
_ALLOWED = tuple((method, re.compile(pattern)) for method, pattern in ALLOWED)
_FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "x-public-key")
#: Paths below this are a central flow's Prefect API: streamed both ways.
_PREFECT = "prefect/"
_PREFECT_REQUEST_HEADERS = (*_FORWARDED_REQUEST_HEADERS, "content-length", "user-agent",
                            "x-prefect-api-version", "prefect-csrf-token", "prefect-csrf-client")
_PREFECT_RESPONSE_HEADERS = ("retry-after", "x-v6flow-prefect-ui")
_DROPPED_RESPONSE_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
     "server", "date"}
)
_CONNECT_ATTEMPTS = 3
#: Paths whose answers are streamed (Server-Sent Events): no read timeout, no buffering.
_STREAMED_PATHS = frozenset({"events"})
_STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)
_MAX_UNIX_PATH = 107  # sun_path is 108 bytes including the terminating NUL
_RESULTS = re.compile(f"result(?:/{_ID})?")


#: Blob transfers: per read or write of one chunk, not for the whole stream.
_BLOB_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_OCTETS = "application/octet-stream"
CodecFactory = Callable[[], blobstream.Codec]


#: The answer the address book rewrites.
ADDRESSES_PATH = "vpn/algorithm/addresses"


class AddressBook(Protocol):
    """Turns the server's peer addresses into addresses that work inside the caller."""

    async def rewrite(self, authorization: str | None, body: Any) -> Any:
        """The answer to give the container that sent ``authorization``."""


def build_proxy_app(server_url: str, client: httpx.AsyncClient,
                    peers: AddressBook | None = None, e2e: NodeEncryption | None = None, *,
                    blob_upload: CodecFactory = blobstream.Base64Encoder,
                    blob_download: CodecFactory = blobstream.Base64Decoder) -> Starlette:
    """Create the proxy ASGI app.

    Args:
        server_url: the server API base, e.g. ``http://127.0.0.1:7601/api``.
        client: the shared async client used for every upstream call.
        peers: rewrites the answers of ``GET vpn/algorithm/addresses`` (none: as they are).
        e2e: the node's encryption; with a key, subtask inputs are encrypted and results
            decrypted for containers.
        blob_upload: the transform of a container's blob on its way to the server
            (default: base64, an unencrypted collaboration's blob).
        blob_download: the transform of a blob on its way to a container.

    Returns:
        A Starlette app that forwards allowed requests to the server and refuses the rest.
    """
    base = server_url.rstrip("/")
    refusals = _RefusalLog()
    crypto = ContainerCrypto(e2e, client, base) if e2e is not None and e2e.enabled else None

    async def forward(request: Request) -> Response:
        path = request.path_params.get("path", "")
        if not is_allowed(request.method, path):
            refusals.note(request.method, path)
            return JSONResponse(
                {"msg": f"node proxy: {request.method} /{path[:200]} is not available to "
                        "algorithm containers"}, status_code=403)
        url = f"{base}/{path}"
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED_REQUEST_HEADERS}
        if request.method == "GET" and path.strip("/") in _STREAMED_PATHS:
            return await _stream(url, request, headers)
        if request.method == "POST" and path == "blobstream":
            return await _upload_blob(url, request, headers)
        if request.method == "GET" and path.startswith("blobstream/") and \
                path != "blobstream/status":
            return await _download_blob(url, headers)
        if path.startswith(_PREFECT):
            return await _pass_through(url, request)
        body = await request.body()
        if crypto is not None and request.method == "POST" and path == "task":
            try:
                body = await crypto.task_body(body, headers)
            except Refused as refused:
                return refused.response()
        for attempt in range(1, _CONNECT_ATTEMPTS + 1):
            try:
                upstream = await client.request(
                    request.method, url, params=list(request.query_params.multi_items()),
                    content=body or None, headers=headers,
                )
                break
            except httpx.ConnectError as exc:
                # Nothing reached the server: safe to retry, even a POST.
                if attempt == _CONNECT_ATTEMPTS:
                    log.warning("proxy upstream unreachable", path=path, error=str(exc))
                    return JSONResponse({"msg": f"node proxy: server unreachable ({exc})"},
                                        status_code=502)
                await asyncio.sleep(0.2 * attempt)
            except httpx.HTTPError as exc:
                log.warning("proxy upstream failed", path=path, error=str(exc))
                return JSONResponse(
                    {"msg": f"node proxy: request to server failed ({type(exc).__name__})"},
                    status_code=502,
                )
        out_headers = {k: v for k, v in upstream.headers.items()
                       if k.lower() not in _DROPPED_RESPONSE_HEADERS}
        if peers is not None and path == ADDRESSES_PATH and upstream.status_code == 200:
            try:
                answer = upstream.json()
            except ValueError:
                answer = None
            if answer is not None:
                rewritten = await peers.rewrite(request.headers.get("authorization"), answer)
                return JSONResponse(rewritten, status_code=200)
        content = upstream.content
        if (crypto is not None and request.method == "GET" and _RESULTS.fullmatch(path)
                and upstream.status_code == 200):
            try:
                content = await crypto.results(content, headers)
            except Refused as refused:
                return refused.response()
        return Response(content, status_code=upstream.status_code, headers=out_headers)

    async def _stream(url: str, request: Request, headers: dict[str, str]) -> Response:
        upstream_request = client.build_request(
            "GET", url, params=list(request.query_params.multi_items()), headers=headers,
            timeout=_STREAM_TIMEOUT)
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("proxy upstream stream failed", url=url, error=str(exc))
            return JSONResponse({"msg": f"node proxy: server unreachable ({exc})"},
                                status_code=502)
        if upstream.status_code != 200:
            await upstream.aread()
            await upstream.aclose()
            return Response(upstream.content, status_code=upstream.status_code,
                            media_type=upstream.headers.get("content-type"))
        return StreamingResponse(
            _relay(upstream), status_code=200,
            media_type=upstream.headers.get("content-type", "text/event-stream"),
            headers={"Cache-Control": "no-cache"}, background=BackgroundTask(upstream.aclose))

    async def _pass_through(url: str, request: Request) -> Response:
        """A Prefect API request: the body streamed up, the answer streamed back."""
        headers = {k: v for k, v in request.headers.items() if k in _PREFECT_REQUEST_HEADERS}
        upstream_request = client.build_request(
            request.method, url, params=list(request.query_params.multi_items()),
            headers=headers,
            content=request.stream() if request.method in ("POST", "PATCH") else None)
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("proxy prefect request failed", url=url, error=type(exc).__name__)
            return JSONResponse({"msg": f"node proxy: server unreachable ({type(exc).__name__})"},
                                status_code=502)
        return StreamingResponse(
            _relay_decoded(upstream), status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
            headers={k: v for k, v in upstream.headers.items()
                     if k.lower() in _PREFECT_RESPONSE_HEADERS},
            background=BackgroundTask(upstream.aclose))

    async def _upload_blob(url: str, request: Request, headers: dict[str, str]) -> Response:
        body = blobstream.atransform(request.stream(), blob_upload())
        try:
            upstream = await client.post(url, content=body, timeout=_BLOB_TIMEOUT,
                                         headers={**headers, "content-type": _OCTETS})
        except httpx.HTTPError as exc:
            log.warning("proxy blob upload failed", error=str(exc) or type(exc).__name__)
            return JSONResponse({"msg": f"node proxy: blob upload failed ({type(exc).__name__})"},
                                status_code=502)
        return Response(upstream.content, status_code=upstream.status_code,
                        media_type=upstream.headers.get("content-type"))

    async def _download_blob(url: str, headers: dict[str, str]) -> Response:
        upstream_request = client.build_request("GET", url, headers=headers,
                                                timeout=_BLOB_TIMEOUT)
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("proxy blob download failed", url=url, error=str(exc))
            return JSONResponse({"msg": f"node proxy: server unreachable ({exc})"},
                                status_code=502)
        if upstream.status_code != 200:
            await upstream.aread()
            await upstream.aclose()
            return Response(upstream.content, status_code=upstream.status_code,
                            media_type=upstream.headers.get("content-type"))
        body = _decoded(upstream) if upstream.headers.get("content-type", "").startswith(
            _OCTETS) else _relay(upstream)
        return StreamingResponse(body, status_code=200, media_type=_OCTETS,
                                 background=BackgroundTask(upstream.aclose))

    async def _decoded(upstream: httpx.Response) -> AsyncIterator[bytes]:
        """The blob decoded for the container; a broken blob ends the stream early."""
        try:
            async for chunk in blobstream.atransform(upstream.aiter_bytes(), blob_download()):
                yield chunk
        except (DeserializationError, httpx.HTTPError) as exc:
            log.warning("proxy blob download cut", error=str(exc))

    return Starlette(routes=[Route("/{path:path}", AnyMethod(forward))])


class Refused(Exception):
    """The proxy answers this itself (JSON ``{"msg"}``) instead of the server's answer."""

    def __init__(self, status_code: int, msg: str) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.msg = msg

    def response(self) -> JSONResponse:
        """The JSON answer to the container."""
        return JSONResponse({"msg": f"node proxy: {self.msg}"}, status_code=self.status_code)


class ContainerCrypto:
    """Encryption on behalf of algorithm containers (CONTRACT §2.3, docs/security.md).

    Subtask inputs are encrypted for each target organization (the node's
    ``encryption.subtask_scheme``), bound to the node's organization as sender; results
    are decrypted with the node's key, bound to their task, run organization and input.
    Upstream reads (public keys, runs) carry the container's own token.
    """

    def __init__(self, e2e: NodeEncryption, client: httpx.AsyncClient, base: str) -> None:
        self.e2e = e2e
        self._client = client
        self._base = base

    async def _get(self, path: str, headers: dict[str, str]) -> Any:
        try:
            response = await self._client.get(f"{self._base}/{path}", headers=headers)
        except httpx.HTTPError as exc:
            raise Refused(502, f"server unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise Refused(response.status_code if response.status_code < 500 else 502,
                          f"GET /{path} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise Refused(502, f"GET /{path} answered no JSON") from None

    async def task_body(self, body: bytes, headers: dict[str, str]) -> bytes:
        """``POST /task`` with each plain input encrypted for its organization.

        A body that is not a task (no JSON, no ``organizations``) goes on unchanged: the
        server refuses it with its own message.

        Raises:
            Refused: an input is not base64, or a target organization has no usable key.
        """
        try:
            task = json.loads(body)
        except ValueError:
            return body
        targets = task.get("organizations") if isinstance(task, dict) else None
        if not isinstance(targets, list):
            return body
        for target in targets:
            if not (isinstance(target, dict) and isinstance(target.get("input"), str)
                    and isinstance(target.get("id"), int)):
                continue
            if scheme_of(target["input"]) is not Scheme.PLAIN:
                continue  # already encrypted: the server checks its form
            try:
                plain = base64.b64decode(target["input"], validate=True)
            except (binascii.Error, ValueError):
                raise Refused(400, f"the input for organization id={target['id']} is not "
                                   "base64") from None
            org = await self._get(f"organization/{target['id']}", headers)
            try:
                target["input"] = self.e2e.seal_input(plain, str(org.get("public_key") or ""),
                                                      target["id"])
            except EncryptionError as exc:
                raise Refused(400, str(exc)) from None
        return json.dumps(task).encode()

    async def results(self, content: bytes, headers: dict[str, str]) -> bytes:
        """A ``/result`` answer (one item or a page) with each result decrypted to base64.

        Raises:
            Refused: 502 when a result cannot be decrypted (names the run and why).
        """
        try:
            answer = json.loads(content)
        except ValueError:
            return content
        items = answer.get("data") if isinstance(answer, dict) and "data" in answer else [answer]
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("result"), str) and item["result"]:
                item["result"] = await self._open(item, headers)
        return json.dumps(answer).encode()

    async def _open(self, item: dict[str, Any], headers: dict[str, str]) -> str:
        run_id = int((item.get("run") or {}).get("id") or item.get("id") or 0)
        task_id = int((item.get("task") or {}).get("id") or 0)
        run = await self._get(f"run/{run_id}", headers)
        sender = int((run.get("organization") or {}).get("id") or 0)
        try:
            plain = self.e2e.open_result(item["result"], task_id=task_id, run_id=run_id,
                                         sender=sender, input_text=run.get("input"))
        except EncryptionError as exc:
            log.warning("subtask result refused", run_id=run_id, error=str(exc))
            raise Refused(502, f"the result cannot be decrypted: {exc}") from None
        return base64.b64encode(plain).decode("ascii")


class _RefusalLog:
    """Logs refused requests, at most one line per second (an algorithm may loop on them)."""

    def __init__(self) -> None:
        self._last = -1.0
        self._unlogged = 0

    def note(self, method: str, path: str) -> None:
        now = time.monotonic()
        if now - self._last < 1.0:
            self._unlogged += 1
            return
        log.warning("proxy refused a request", method=method, path=path[:200],
                    refused_unlogged_before=self._unlogged)
        self._last, self._unlogged = now, 0


class AnyMethod:
    """An ASGI endpoint for every HTTP method (a plain function route would allow only GET):
    the handler, not the router, decides, so every refusal is a JSON 403."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._handler(Request(scope, receive))
        await response(scope, receive, send)


def is_allowed(method: str, path: str) -> bool:
    """Whether an algorithm container may send ``method`` to ``path`` (no leading slash).

    ``path`` is the percent-decoded request path; a pattern must match all of it, and no
    pattern admits ``.``, ``%`` or an empty segment, so nothing can step out of it.
    """
    return any(method == allowed and pattern.fullmatch(path)
               for allowed, pattern in _ALLOWED)


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body as it arrives; a broken upstream just ends the stream."""
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in upstream.aiter_raw():
            yield chunk


async def _relay_decoded(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body, decoded (a compressing reverse proxy in front of the server must
    not reach the container, which gets no Content-Encoding); a broken upstream ends it."""
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in upstream.aiter_bytes():
            yield chunk


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the node daemon."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProxyServer:
    """Serves the proxy app on a unix socket inside the running event loop."""

    def __init__(self, *, server_url: str, socket_path: Path,
                 client: httpx.AsyncClient, peers: AddressBook | None = None,
                 e2e: NodeEncryption | None = None) -> None:
        """Prepare (not start) the proxy.

        Args:
            server_url: the server API base.
            socket_path: unix socket to listen on (its folder is mounted by the sidecars).
            client: the shared async client for upstream calls.
            peers: the node's peer relay, which rewrites peer addresses (none: no rewrite).
            e2e: the node's encryption (see :func:`build_proxy_app`).
        """
        self.socket_path = socket_path
        config = uvicorn.Config(
            build_proxy_app(server_url, client, peers, e2e), uds=str(socket_path), log_config=None,
            access_log=False, lifespan="off", timeout_keep_alive=30,
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind the socket and serve in the background; returns once it listens.

        Raises:
            ProxyError: the socket path is too long for AF_UNIX, or binding failed.
        """
        if len(str(self.socket_path).encode()) > _MAX_UNIX_PATH:
            raise ProxyError(f"proxy socket path {self.socket_path} is longer than "
                             f"{_MAX_UNIX_PATH} bytes; choose a shorter task_dir")
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self._task = asyncio.create_task(self._server.serve(), name="proxy")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises why it stopped
                raise ProxyError("proxy stopped before it started")  # pragma: no cover
            await asyncio.sleep(0.02)
        # Only the containers' user may connect (they run unprivileged; see identity.py).
        give_to_algorithm(self.socket_path, 0o600)
        log.info("proxy listening", socket=str(self.socket_path))

    async def stop(self) -> None:
        """Stop serving and remove the socket."""
        if self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        self.socket_path.unlink(missing_ok=True)
