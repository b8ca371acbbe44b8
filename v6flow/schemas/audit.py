"""The audit trail of security events: ``GET /audit`` (root only).

An entry says who did what to which object, when and from where. It never holds secrets or
data: no passwords, tokens, API keys, task inputs or results, only ids, names and short
reasons.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from v6flow.schemas.common import WireDatetime


class AuditEvent(StrEnum):
    """What happened (the stored and wire value of an entry's ``event``)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    ACCOUNT_LOCKED = "account_locked"
    ACCOUNT_UNLOCKED = "account_unlocked"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
    TWO_FACTOR_RESET = "two_factor_reset"
    USER_CREATED = "user_created"
    USER_UPDATED = "user_updated"
    USER_DELETED = "user_deleted"
    USER_ROLES_CHANGED = "user_roles_changed"
    ROLE_CREATED = "role_created"
    ROLE_UPDATED = "role_updated"
    ROLE_DELETED = "role_deleted"
    NODE_CREATED = "node_created"
    NODE_DELETED = "node_deleted"
    CONTAINER_TOKEN_ISSUED = "container_token_issued"  # noqa: S105 - an event name
    CONTAINER_TOKEN_REFUSED = "container_token_refused"  # noqa: S105 - an event name
    TASK_KILLED = "task_killed"
    NODE_TASKS_KILLED = "node_tasks_killed"
    TASK_DELETED = "task_deleted"
    ORGANIZATION_DELETED = "organization_deleted"
    COLLABORATION_DELETED = "collaboration_deleted"


class AuditEntryOut(BaseModel):
    """One audit entry."""

    id: int
    at: WireDatetime = Field(description="When it happened (UTC).")
    event: AuditEvent
    actor_type: str = Field(
        description="Who acted: 'user', 'node', 'container' or 'anonymous'.")
    actor_id: int | None = Field(
        default=None, description="The user or node id (for a container: its node's id).")
    actor_name: str | None = Field(
        default=None, description="The username or node name, when known.")
    target_type: str | None = Field(default=None, description="The kind of object acted on.")
    target_id: int | None = Field(default=None, description="The id of the object acted on.")
    client_address: str | None = Field(
        default=None, description="The network address the request came from.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Ids, names and reasons; never secrets or data.")
