"""Prefect Block naming a collaboration, its default organizations and databases, and (when
given) the credentials to reach its server: everything a deployment needs, under one name."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl

from ._project import DOCUMENTATION_URL, LOGO_URL
from .credentials import V6flowServerCredentials


class V6flowCollaboration(Block):
    """Which collaboration a flow runs in, and its defaults.

    A flow uses it through its ``federation`` parameter: ``{"collaboration_block": "<name>"}``
    (:class:`Federation`); fields given there win over the Block's.

    Attributes:
        collaboration_id: id of the collaboration on the server.
        organizations: organization ids to run at by default (empty: all members).
        databases: database requests sent with each task.
        credentials: the server credentials Block to log in with (optional: the flow's
            ``federation.credentials_block`` or ``server`` may give them instead).

    Examples:
        >>> creds = V6flowServerCredentials.load("v6flow-local")       # doctest: +SKIP
        >>> V6flowCollaboration(collaboration_id=1, credentials=creds).save("x")  # doctest: +SKIP
    """

    _block_type_name = "V6flow Collaboration"
    _description = ("A v6flow collaboration with default organizations and databases, and "
                    "the server credentials to reach it.")
    _documentation_url = HttpUrl(DOCUMENTATION_URL)
    _logo_url = HttpUrl(LOGO_URL)

    collaboration_id: int = Field(..., description="Collaboration id on the server.", ge=1)
    organizations: list[int] = Field(
        default_factory=list, description="Organization ids to run at; empty means all.")
    databases: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"label": "default"}],
        description="Database requests of each task, e.g. [{\"label\": \"default\"}].")
    credentials: V6flowServerCredentials | None = Field(
        default=None, description="Server credentials to log in with (a saved Block).")

    def organization_ids(self) -> list[int] | None:
        """The default organizations, or None for every member of the collaboration."""
        return list(self.organizations) or None
