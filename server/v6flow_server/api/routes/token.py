"""Routes that hand out tokens: user login, node login, refresh, container tokens.

The three login-like routes are rate limited per client address (and ``/token/user`` also
per username); see :mod:`v6flow_server.auth.ratelimit`.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from v6flow.schemas import (
    ContainerTokenOut,
    ContainerTokenRequest,
    Msg,
    NodeLogin,
    TokenPairOut,
    TwoFactorEnrolmentOut,
    UserLogin,
)
from v6flow_server.api.accounts import RulesDep, limit
from v6flow_server.api.deps import BearerDep, NodePrincipal, StateDep, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.auth.principals import ClientType
from v6flow_server.auth.ratelimit import LimitGroup
from v6flow_server.auth.tokens import TokenPair
from v6flow_server.services import accounts, auth

router = APIRouter(tags=["token"])
REFRESH_URL = "/api/token/refresh"


def _pair_out(client_type: ClientType, subject_id: int, pair: TokenPair) -> TokenPairOut:
    out = TokenPairOut(access_token=pair.access_token, refresh_token=pair.refresh_token,
                       refresh_url=REFRESH_URL)
    if client_type is ClientType.NODE:
        out.node_url = f"/api/node/{subject_id}"
    else:
        out.user_url = f"/api/user/{subject_id}"
    return out


@router.post("/token/user", response_model_exclude_none=True, responses=errors(401, 429),
             dependencies=[limit(LimitGroup.USER_LOGIN)])
def login_user(body: UserLogin, state: StateDep, rules: RulesDep,
               response: Response) -> TokenPairOut | TwoFactorEnrolmentOut | Msg:
    """Log a user in with username and password (and the TOTP code when 2FA is on).

    With ``two_factor_auth`` on, a user without a second factor gets, once, the enrolment
    answer (``qr_uri``, ``otp_secret``, ``msg``) instead of tokens, and a user with one who
    sent no code gets ``{"msg": "Please include your two-factor authentication code"}``.
    """
    state.rate_limiter.check_username(body.username)
    outcome = accounts.login(sessions=state.session_factory, issuer=state.token_issuer(),
                             rules=rules, username=body.username, password=body.password,
                             mfa_code=body.mfa_code)
    if isinstance(outcome, accounts.Enrolment):
        return TwoFactorEnrolmentOut(qr_uri=outcome.qr_uri, otp_secret=outcome.secret,
                                     msg=outcome.msg)
    if isinstance(outcome, accounts.CodeNeeded):
        return Msg(msg=outcome.msg)
    response.headers["jwt-token"] = outcome.pair.access_token
    return _pair_out(ClientType.USER, outcome.user_id, outcome.pair)


@router.post("/token/node", response_model_exclude_none=True, responses=errors(401, 429),
             dependencies=[limit(LimitGroup.NODE_LOGIN)])
def login_node(body: NodeLogin, work: WorkDep, state: StateDep) -> TokenPairOut:
    """Log a node in with its API key (a UUID)."""
    node, pair = auth.login_node(session=work.session, issuer=state.token_issuer(),
                                 api_key=str(body.api_key))
    return _pair_out(ClientType.NODE, node.id, pair)


@router.post("/token/refresh", response_model_exclude_none=True, responses=errors(429),
             dependencies=[limit(LimitGroup.REFRESH)])
def refresh(token: BearerDep, work: WorkDep, state: StateDep) -> TokenPairOut:
    """Exchange the refresh token (``Authorization: Bearer``) for a new pair."""
    client_type, subject_id, pair = auth.refresh_tokens(
        session=work.session, issuer=state.token_issuer(), refresh_token=token)
    return _pair_out(client_type, subject_id, pair)


@router.post("/token/container", responses=errors(403))
def container_token(body: ContainerTokenRequest, node: NodePrincipal, work: WorkDep,
                    state: StateDep) -> ContainerTokenOut:
    """Token for the algorithm container a node is about to start for its run of a task.

    Only for a run of the node's organization that the node has started (PATCHed to
    ``initializing``) and that is not finished; the token dies with that run.
    """
    lifetime = timedelta(minutes=state.settings.container_token_minutes)
    token = auth.container_token(session=work.session, issuer=state.token_issuer(), node=node,
                                 task_id=body.task_id, image=body.image, lifetime=lifetime)
    return ContainerTokenOut(container_token=token)
