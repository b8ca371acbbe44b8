"""Nodes: the daemon of one organization in one collaboration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from v6flow.schemas.common import Id, Rel, SingleLine, WireDatetime


class NodeCreate(BaseModel):
    """``POST /node``; the organization defaults to the caller's."""

    collaboration_id: Id
    organization_id: Id | None = None
    name: SingleLine | None = Field(default=None, min_length=1, max_length=255)


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
