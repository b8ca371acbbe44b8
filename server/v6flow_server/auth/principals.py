"""Who is calling: identities resolved from a token (plain data, no FastAPI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from v6flow_server.auth.permissions import Operation, Resource, RuleKey, Scope, allows, widest_scope


class ClientType(StrEnum):
    """The three kinds of callers of the v4 API (the token's ``client_type``)."""

    USER = "user"
    NODE = "node"
    CONTAINER = "container"


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Common part of every caller: organization, visible collaborations and rules."""

    client_type: ClientType
    organization_id: int
    collaboration_ids: frozenset[int]
    rules: frozenset[RuleKey]

    def scope(self, resource: Resource, operation: Operation) -> Scope | None:
        """The widest scope this caller holds for ``operation`` on ``resource``."""
        return widest_scope(self.rules, resource, operation)

    def can(self, resource: Resource, operation: Operation, scope: Scope) -> bool:
        """Whether this caller may do ``operation`` on ``resource`` at ``scope``."""
        return allows(self.rules, resource, operation, scope)


@dataclass(frozen=True, kw_only=True)
class UserIdentity(Identity):
    """A logged-in person."""

    user_id: int
    username: str


@dataclass(frozen=True, kw_only=True)
class NodeIdentity(Identity):
    """A node of one organization in one collaboration."""

    node_id: int
    collaboration_id: int


@dataclass(frozen=True, kw_only=True)
class ContainerIdentity(Identity):
    """An algorithm container, acting for the node that started it, bound to one task."""

    node_id: int
    collaboration_id: int
    task_id: int
    job_id: int
    image: str
    study_id: int | None = None
    store_id: int | None = None
    databases: list[dict[str, Any]] = field(default_factory=list)
