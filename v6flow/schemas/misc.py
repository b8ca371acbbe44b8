"""Small answers: health, version and the web UI's settings (blob status: ``blob.py``; ports:
``port.py``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    """``GET /health``."""

    database: bool


class VersionOut(BaseModel):
    """``GET /version``: the vantage6 version we are compatible with, and our own."""

    version: str
    v6flow: str




class UiConfigOut(BaseModel):
    """``GET /ui/config``: what the web UI needs to know of the server's settings."""

    prefect_ui_url: str | None = Field(
        default=None, description="Root address of the Prefect UI; a task's flow run is at "
                                  "<prefect_ui_url>/runs/flow-run/<flow_run_id>.")
    password_min_length: int = Field(
        description="The password policy's minimum length (the forms say it and check it).")
