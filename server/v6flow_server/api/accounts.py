"""Request helpers of the account routes: the client address, rate limits, account rules.

The client address is the peer of the connection (``request.client``); uvicorn replaces it
from ``X-Forwarded-For`` only for the proxies listed in the ``forwarded_allow_ips`` setting,
so a caller cannot pick the address its requests are counted for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, params

from v6flow_server.api.deps import StateDep
from v6flow_server.auth.ratelimit import LimitGroup
from v6flow_server.mail import Mailer, mailer_from_settings
from v6flow_server.services.accounts import AccountRules

UNKNOWN_ADDRESS = "unknown"


def client_address(request: Request) -> str:
    """The address the request came from (a node's, for requests through its proxy)."""
    return request.client.host if request.client else UNKNOWN_ADDRESS


def rate_limited(group: LimitGroup) -> Callable[[Request, StateDep], None]:
    """A route dependency that counts the request against its address's budget for ``group``.

    It runs before the body is read, so malformed requests count too.
    """

    def check(request: Request, state: StateDep) -> None:
        state.rate_limiter.check_address(group, client_address(request))

    return check


def limit(group: LimitGroup) -> params.Depends:
    """``dependencies=[limit(group)]`` of a route."""
    return params.Depends(rate_limited(group))


def get_rules(state: StateDep) -> AccountRules:
    """The account rules of this server."""
    return AccountRules.from_settings(state.settings)


def get_mailer(state: StateDep) -> Mailer:
    """The mailer of this server (sends nothing without an SMTP host)."""
    return mailer_from_settings(state.settings.smtp)


RulesDep = Annotated[AccountRules, Depends(get_rules)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]
