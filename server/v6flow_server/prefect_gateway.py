"""Forwards central flows' Prefect API requests to the configured Prefect API.

The route (:mod:`v6flow_server.api.routes.prefect_proxy`) resolves the container token and
classifies the request (:mod:`v6flow_server.services.prefect_access`); :class:`PrefectGateway`
checks that every flow run the request touches belongs to the caller's task, rewrites the
bodies the rules rewrite, and sends the request with the server's own Prefect credentials
(``prefect.api_key`` or ``prefect.auth_string``), never the container token. Answers come
back streamed, except the two whose body the gateway reads (a created flow run and a created
artifact: their ids are remembered as owned).

Who owns a flow run is read from Prefect (its ``v6flow.task:<id>`` tag) and remembered in
a bounded in-memory map: a flow run's owner never changes, so replicas that each keep their
own map agree.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx
import structlog

from v6flow_server.auth.principals import ContainerIdentity
from v6flow_server.errors import BadGatewayError, BadRequestError, ForbiddenError
from v6flow_server.services import prefect_access as rules
from v6flow_server.services.prefect_access import Endpoint, PrefectCall
from v6flow_server.settings import PrefectSettings

log = structlog.get_logger(__name__)

#: Request headers passed on to Prefect (never ``authorization``: the server sets its own).
FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "x-prefect-api-version",
                             "prefect-csrf-token", "prefect-csrf-client", "user-agent")
#: Response headers passed back.
FORWARDED_RESPONSE_HEADERS = ("content-type", "retry-after")
#: Owners remembered (flow runs and artifacts each).
REMEMBERED = 10_000
#: Largest answer the gateway reads whole (a created flow run or artifact).
MAX_READ_BYTES = 16 * 1024 * 1024
_JSON = "application/json"
K = TypeVar("K")
V = TypeVar("V")


class _Bounded(Generic[K, V]):
    """A map that forgets its oldest entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


def _auth_headers(settings: PrefectSettings) -> dict[str, str]:
    if settings.api_key is not None:
        return {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    if settings.auth_string is not None:  # as Prefect's own client sends it
        token = base64.b64encode(settings.auth_string.get_secret_value().encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise BadRequestError("The body is not JSON") from None


class PrefectGateway:
    """The server's connection to its Prefect API (one per app)."""

    def __init__(self, settings: PrefectSettings,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """Prepare the client (no request is made yet).

        Args:
            settings: ``prefect`` settings with an ``api_url``.
            transport: for tests of the gateway alone; default: the network.
        """
        if settings.api_url is None:
            raise ValueError("PrefectGateway needs prefect.api_url")
        self.settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.api_url + "/", headers=_auth_headers(settings),
            timeout=httpx.Timeout(settings.timeout_seconds, connect=5.0), transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        self._flow_runs: _Bounded[UUID, int] = _Bounded(REMEMBERED)
        self._artifacts: _Bounded[UUID, UUID] = _Bounded(REMEMBERED)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def forward(self, container: ContainerIdentity, call: PrefectCall, *, method: str,
                      path: str, query: str, headers: Mapping[str, str],
                      body: bytes) -> httpx.Response:
        """Check ``call`` for ``container`` and send it; the answer is open for streaming.

        The caller closes the answer (``aclose``) once it has relayed it.

        Raises:
            ForbiddenError: a flow run or artifact it touches is not the container's task's,
                or the body breaks a rule.
            BadRequestError: the body is malformed.
            BadGatewayError: Prefect could not be reached.
        """
        endpoint = call.endpoint
        payload: Any = None
        if endpoint is Endpoint.CREATE_FLOW_RUN:
            payload = rules.flow_run_create(_json_body(body), container)
        elif endpoint is Endpoint.UPDATE_FLOW_RUN:
            payload = rules.flow_run_update(_json_body(body), container)
        if endpoint in (Endpoint.READ_FLOW_RUN, Endpoint.UPDATE_FLOW_RUN,
                        Endpoint.SET_FLOW_RUN_STATE, Endpoint.UPDATE_FLOW_RUN_LABELS):
            await self._require_flow_runs(container, {call.named_id()})
        elif endpoint is Endpoint.CREATE_LOGS:
            await self._require_flow_runs(container, rules.log_flow_runs(_json_body(body)))
        elif endpoint is Endpoint.CREATE_EVENTS:
            await self._require_flow_runs(container, rules.event_flow_runs(_json_body(body)))
        elif endpoint is Endpoint.CREATE_ARTIFACT:
            await self._require_flow_runs(
                container, {rules.artifact_flow_run(_json_body(body))})
        elif endpoint is Endpoint.UPDATE_ARTIFACT:
            await self._require_flow_runs(container,
                                          {await self._artifact_run(call.named_id())})
        content = body if payload is None else json.dumps(payload).encode()
        out_headers = {k: v for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        if payload is not None:
            out_headers["content-type"] = _JSON
        upstream = await self._send(method, path, query=query, headers=out_headers,
                                    content=content or None)
        if endpoint is Endpoint.CREATE_FLOW_RUN:
            return await self._note_created_flow_run(upstream, container)
        if endpoint is Endpoint.CREATE_ARTIFACT:
            return await self._note_created_artifact(upstream)
        return upstream

    async def _send(self, method: str, path: str, *, query: str = "",
                    headers: Mapping[str, str] | None = None,
                    content: bytes | None = None) -> httpx.Response:
        url = path + (f"?{query}" if query else "")
        request = self._client.build_request(method, url, headers=headers, content=content)
        try:
            return await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("prefect_api_unreachable", path=path, error=type(exc).__name__)
            raise BadGatewayError(
                f"The Prefect API did not answer ({type(exc).__name__})") from exc

    async def _read(self, response: httpx.Response) -> tuple[httpx.Response, Any]:
        """Read a (bounded) answer whole: a closed copy to relay, and its JSON (or None)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_READ_BYTES:
                    raise BadGatewayError("The Prefect API answered more than expected")
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise BadGatewayError(f"The Prefect API answer broke off ({type(exc).__name__})"
                                  ) from exc
        finally:
            await response.aclose()
        body = b"".join(chunks)
        copy = httpx.Response(response.status_code, content=body, headers={
            k: v for k, v in response.headers.items() if k.lower() in FORWARDED_RESPONSE_HEADERS})
        try:
            return copy, json.loads(body)
        except ValueError:
            return copy, None

    async def _owner_of(self, flow_run: UUID) -> int | None:
        """The task whose flow run this is (remembered, else read from Prefect)."""
        owner = self._flow_runs.get(flow_run)
        if owner is not None:
            return owner
        response, answer = await self._read(await self._send("GET", f"flow_runs/{flow_run}"))
        if response.status_code == 404:
            return None
        if response.status_code != 200 or not isinstance(answer, dict):
            raise BadGatewayError(f"The Prefect API answered {response.status_code} when "
                                  "asked for a flow run")
        owner = rules.owner_task(answer.get("tags"))
        if owner is not None:
            self._flow_runs.put(flow_run, owner)
        return owner

    async def _require_flow_runs(self, container: ContainerIdentity,
                                 flow_runs: set[UUID]) -> None:
        for flow_run in sorted(flow_runs):
            if await self._owner_of(flow_run) != container.task_id:
                raise ForbiddenError(f"Flow run {flow_run} is not a flow run of this "
                                     "container's task")

    async def _artifact_run(self, artifact: UUID) -> UUID:
        flow_run = self._artifacts.get(artifact)
        if flow_run is not None:
            return flow_run
        response, answer = await self._read(await self._send("GET", f"artifacts/{artifact}"))
        if response.status_code != 200 or not isinstance(answer, dict) or \
                answer.get("flow_run_id") is None:
            raise ForbiddenError(f"Artifact {artifact} is not an artifact of this "
                                 "container's task")
        flow_run = UUID(str(answer["flow_run_id"]))
        self._artifacts.put(artifact, flow_run)
        return flow_run

    async def _note_created_flow_run(self, response: httpx.Response,
                                     container: ContainerIdentity) -> httpx.Response:
        response, answer = await self._read(response)
        if response.status_code not in (200, 201) or not isinstance(answer, dict) or \
                not answer.get("id"):
            return response
        if rules.owner_task(answer.get("tags")) != container.task_id:
            # An existing flow run came back (e.g. an idempotency key): not the caller's.
            raise ForbiddenError("The Prefect API answered with a flow run of another task")
        self._flow_runs.put(UUID(str(answer["id"])), container.task_id)
        log.info("prefect_flow_run_created", flow_run=answer["id"], task=container.task_id,
                 job=container.job_id)
        return response

    async def _note_created_artifact(self, response: httpx.Response) -> httpx.Response:
        response, answer = await self._read(response)
        if response.status_code in (200, 201) and isinstance(answer, dict) and \
                answer.get("id") and answer.get("flow_run_id"):
            self._artifacts.put(UUID(str(answer["id"])), UUID(str(answer["flow_run_id"])))
        return response
