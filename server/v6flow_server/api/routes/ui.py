"""What the web UI needs to know about this server's deployment (``GET /ui/config``).

Only addresses of other services people open in their browser live here, read from the
server's settings; nothing secret. The answer is still given to logged-in users only: an
anonymous caller has no use for internal addresses.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from v6flow_server.api.deps import StateDep, UserPrincipal
from v6flow_server.api.openapi import errors

router = APIRouter(tags=["ui"])


class UiConfigOut(BaseModel):
    """The web UI's settings from the server (``ServerSettings.prefect_ui_url``)."""

    prefect_ui_url: str | None = Field(
        default=None, description="Root address of the Prefect UI; a task's flow run is at "
                                  "<prefect_ui_url>/runs/flow-run/<flow_run_id>.")


@router.get("/ui/config", responses=errors(403))
def ui_config(state: StateDep, _user: UserPrincipal) -> UiConfigOut:
    """Addresses the web UI links to (the Prefect UI of a task's flow run)."""
    return UiConfigOut(prefect_ui_url=state.settings.prefect_ui_url)
