"""Small answers: health, version, algorithm addresses (blob status: ``blob.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    """``GET /health``."""

    database: bool


class VersionOut(BaseModel):
    """``GET /version``: the vantage6 version we are compatible with, and our own."""

    version: str
    v6flow: str


class PortsDeletedOut(BaseModel):
    """``DELETE /port``."""

    msg: str
    deleted: int


class AlgorithmAddressesOut(BaseModel):
    """``GET /vpn/algorithm/addresses``."""

    addresses: list[dict[str, Any]] = Field(default_factory=list)
