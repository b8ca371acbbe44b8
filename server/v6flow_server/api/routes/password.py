"""Routes for a user's own password: ``PATCH /password/change``."""

from __future__ import annotations

from fastapi import APIRouter

from v6flow.schemas import Msg, PasswordChange
from v6flow_server.api.accounts import RulesDep, limit
from v6flow_server.api.deps import BearerDep, StateDep
from v6flow_server.api.openapi import errors
from v6flow_server.auth.ratelimit import LimitGroup
from v6flow_server.services import accounts

router = APIRouter(tags=["account"])


@router.patch("/password/change", responses=errors(403, 429),
              dependencies=[limit(LimitGroup.PASSWORD)])
def change_password(body: PasswordChange, token: BearerDep, state: StateDep,
                    rules: RulesDep) -> Msg:
    """Change your own password; the current one proves it is you.

    A wrong current password counts as a failed login (lockout). The new password must
    satisfy the password policy (400 naming the rule).
    """
    msg = accounts.change_password(
        sessions=state.session_factory, issuer=state.token_issuer(), rules=rules, token=token,
        current_password=body.current_password, new_password=body.new_password)
    return Msg(msg=msg)
