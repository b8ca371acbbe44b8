"""What the web UI needs to know about this server's settings (``GET /ui/config``).

Addresses of other services people open in their browser, and the password policy's minimum
length (the forms say it and check it before the server does); nothing secret. The answer is
still given to logged-in users only: an anonymous caller has no use for internal addresses.
"""

from __future__ import annotations

from fastapi import APIRouter

from v6flow.schemas import UiConfigOut
from v6flow_server.api.deps import StateDep, UserPrincipal
from v6flow_server.api.openapi import errors

router = APIRouter(tags=["ui"])


@router.get("/ui/config", responses=errors(403))
def ui_config(state: StateDep, _user: UserPrincipal) -> UiConfigOut:
    """Addresses the web UI links to (the Prefect UI of a task's flow run), and the password
    policy's minimum length."""
    return UiConfigOut(prefect_ui_url=state.settings.prefect_ui_url,
                       password_min_length=state.settings.password_min_length)
