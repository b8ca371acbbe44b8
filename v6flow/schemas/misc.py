"""Small answers: health and version (blob status: ``blob.py``; ports: ``port.py``)."""

from __future__ import annotations

from pydantic import BaseModel


class HealthOut(BaseModel):
    """``GET /health``."""

    database: bool


class VersionOut(BaseModel):
    """``GET /version``: the vantage6 version we are compatible with, and our own."""

    version: str
    v6flow: str


