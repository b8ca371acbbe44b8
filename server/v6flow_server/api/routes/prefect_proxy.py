"""``/prefect/...``: the Prefect API of central flows, for algorithm containers only.

A flow that runs as a central task reaches this route through its node's proxy with its
container token (``PREFECT_API_URL=http://127.0.0.1:8080/prefect`` inside the container).
The caller's token is resolved in a short transaction of its own (no transaction stays open
while bytes flow); :mod:`v6flow_server.services.prefect_access` decides what it may do and
:class:`v6flow_server.prefect_gateway.PrefectGateway` forwards it to ``prefect.api_url`` with the
server's credentials. Request bodies are read (bounded by ``prefect.max_body_bytes``)
because the rules check them; answers are streamed back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.responses import Response

from v6flow_server.api.deps import BearerDep, StateDep
from v6flow_server.api.openapi import errors
from v6flow_server.auth.principals import Identity
from v6flow_server.errors import NotFoundError
from v6flow_server.prefect_gateway import FORWARDED_RESPONSE_HEADERS
from v6flow_server.services import prefect_access
from v6flow_server.services.auth import resolve_identity

router = APIRouter(tags=["prefect"])
NO_PREFECT = ("This server reports central flows to no Prefect API (prefect.api_url is not "
              "set): run the flow without one")
#: The methods a flow run uses; others are answered 405 (and the node proxy refuses them).
METHODS = ["GET", "POST", "PATCH"]
#: Added to ``GET admin/version``: the Prefect UI root, for the links in a flow's run log.
UI_HEADER = "X-V6flow-Prefect-UI"


def prefect_identity(state: StateDep, token: BearerDep) -> Identity:
    """The caller, resolved in a transaction that ends before the request is forwarded."""
    with state.session_factory.begin() as session:
        return resolve_identity(session=session, issuer=state.token_issuer(), token=token)


PrefectIdentity = Annotated[Identity, Depends(prefect_identity)]
PrefectPath = Annotated[str, PathParam(description="The Prefect API path, e.g. 'flow_runs/'.")]


# Not in the OpenAPI document: this is Prefect's own API (for algorithm containers only,
# docs/central-tasks.md), not part of the v6flow REST API that clients are generated from.
@router.api_route("/prefect/{path:path}", methods=METHODS, include_in_schema=False,
                  responses=errors(403, 404, 502), response_class=StreamingResponse)
async def prefect_api(path: PrefectPath, request: Request, state: StateDep,
                      identity: PrefectIdentity) -> Response:
    """Forward a central flow run's request to the server's Prefect API (containers only:
    their own flow run, its task runs, states, logs, artifacts and events)."""
    container = prefect_access.require_container(identity)
    if state.prefect is None:
        raise NotFoundError(NO_PREFECT)
    call = prefect_access.classify(request.method, path)
    body = await request.body() if request.method != "GET" else b""
    upstream = await state.prefect.forward(
        container, call, method=request.method, path=path, query=request.url.query,
        headers=request.headers, body=body)
    headers = {k: v for k, v in upstream.headers.items()
               if k.lower() in FORWARDED_RESPONSE_HEADERS and k.lower() != "content-type"}
    ui = state.settings.prefect.ui_root()
    if call.endpoint is prefect_access.Endpoint.VERSION and ui:
        headers[UI_HEADER] = ui
    return StreamingResponse(upstream.aiter_bytes(), status_code=upstream.status_code,
                             media_type=upstream.headers.get("content-type"), headers=headers,
                             background=BackgroundTask(upstream.aclose))

