"""Routes that hand out tokens: user login, node login, refresh, container tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.api.deps import BearerDep, NodePrincipal, StateDep, WorkDep
from server.auth.principals import ClientType
from server.services import auth
from v6flow.schemas import ContainerTokenRequest, NodeLogin, UserLogin

router = APIRouter(tags=["token"])
REFRESH_URL = "/api/token/refresh"


def _subject_url(client_type: ClientType, subject_id: int) -> dict[str, str]:
    if client_type is ClientType.NODE:
        return {"node_url": f"/api/node/{subject_id}"}
    return {"user_url": f"/api/user/{subject_id}"}


@router.post("/token/user")
def login_user(body: UserLogin, work: WorkDep, state: StateDep) -> JSONResponse:
    """Log a user in with username and password."""
    user, pair = auth.login_user(session=work.session, issuer=state.token_issuer(),
                                 username=body.username, password=body.password)
    content = {"access_token": pair.access_token, "refresh_token": pair.refresh_token,
               "refresh_url": REFRESH_URL, **_subject_url(ClientType.USER, user.id)}
    return JSONResponse(content, headers={"jwt-token": pair.access_token})


@router.post("/token/node")
def login_node(body: NodeLogin, work: WorkDep, state: StateDep) -> dict[str, Any]:
    """Log a node in with its API key (a UUID)."""
    node, pair = auth.login_node(session=work.session, issuer=state.token_issuer(),
                                 api_key=str(body.api_key))
    return {"access_token": pair.access_token, "refresh_token": pair.refresh_token,
            "refresh_url": REFRESH_URL, **_subject_url(ClientType.NODE, node.id)}


@router.post("/token/refresh")
def refresh(token: BearerDep, work: WorkDep, state: StateDep) -> dict[str, Any]:
    """Exchange the refresh token (``Authorization: Bearer``) for a new pair."""
    client_type, subject_id, pair = auth.refresh_tokens(
        session=work.session, issuer=state.token_issuer(), refresh_token=token)
    return {"access_token": pair.access_token, "refresh_token": pair.refresh_token,
            "refresh_url": REFRESH_URL, **_subject_url(client_type, subject_id)}


@router.post("/token/container")
def container_token(body: ContainerTokenRequest, node: NodePrincipal, work: WorkDep,
                    state: StateDep) -> dict[str, str]:
    """Token for the algorithm container a node is about to start."""
    token = auth.container_token(session=work.session, issuer=state.token_issuer(), node=node,
                                 task_id=body.task_id, image=body.image)
    return {"container_token": token}
