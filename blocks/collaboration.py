"""Prefect Block naming a collaboration and its default organizations and databases."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field


class V6flowCollaboration(Block):
    """Which collaboration a flow runs in, and its defaults.

    Attributes:
        collaboration_id: id of the collaboration on the server.
        organizations: organization ids to run at by default (empty: all members).
        databases: database requests sent with each task.

    Examples:
        >>> V6flowCollaboration(collaboration_id=1).save("demo")      # doctest: +SKIP
    """

    _block_type_name = "V6flow Collaboration"
    _description = "A v6flow collaboration with default organizations and databases."

    collaboration_id: int = Field(..., description="Collaboration id on the server.", ge=1)
    organizations: list[int] = Field(
        default_factory=list, description="Organization ids to run at; empty means all.")
    databases: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"label": "default"}],
        description="Database requests of each task, e.g. [{\"label\": \"default\"}].")

    def organization_ids(self) -> list[int] | None:
        """The default organizations, or None for every member of the collaboration."""
        return list(self.organizations) or None
