"""Nodes: the daemon of one organization in one collaboration."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from v6flow.schemas.common import Id, Rel, SingleLine, WireDatetime


class NodeCreate(BaseModel):
    """``POST /node``; the organization defaults to the caller's."""

    collaboration_id: Id
    organization_id: Id | None = None
    name: SingleLine | None = Field(default=None, min_length=1, max_length=255)


class NodeUpdate(BaseModel):
    """``PATCH /node/<id>``: the name and the VPN address; nothing else can be changed.

    A node stays in the organization and collaboration it was registered for (like v4), so
    ``organization_id``, ``collaboration_id`` and any other key are refused (400 naming it).
    ``ip`` wins over ``clear_ip`` when both are given.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    ip: str | None = Field(default=None, max_length=64, description="The node's VPN address.")
    clear_ip: bool | None = Field(default=None, description="Forget the node's VPN address.")

    @field_validator("ip")
    @classmethod
    def _is_address(cls, value: str | None) -> str | None:
        """An IPv4 or IPv6 address."""
        if value is not None:
            ip_address(value)  # ValueError names the bad value
        return value


class NodeConfigItem(BaseModel):
    """One configuration value a node reported."""

    key: str
    value: str


class NodeOut(BaseModel):
    """A node (never its API key)."""

    id: int
    name: str
    type: Literal["node"] = "node"
    ip: str | None = None
    last_seen: WireDatetime | None = None
    status: str | None = None
    organization: Rel
    collaboration: Rel
    config: list[NodeConfigItem] = Field(default_factory=list)


class NodeCreatedOut(NodeOut):
    """``POST /node``: the node plus its API key, shown only this once."""

    api_key: str
