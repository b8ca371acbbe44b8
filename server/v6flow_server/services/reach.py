"""How far an identity's VIEW rule reaches, decided once and used twice: in SQL and on events.

A REST query and the event stream must agree on what an identity may see, or ``GET /events``
hands out what ``GET /task/<id>`` refuses. So a resource service turns an identity into a
:class:`Reach` once (plain values: which collaborations, which organization, which job), and
both readers ask that object: the REST query through :meth:`Reach.condition` (a SQL condition
on the resource's columns) and the event filter through :meth:`Reach.allows` (the same test on
the values an event carries). Neither re-implements the scope rules.

Scopes become reaches in one way for every resource (:func:`scope_reach`): GLOBAL reaches
everything, COLLABORATION the identity's collaborations, ORGANIZATION its organization (which
column holds "the organization" is the resource's choice: ``init_org_id`` for tasks,
``organization_id`` for runs). An algorithm container reaches its own job only
(:func:`job_reach`), whatever its rules say.

Examples:
    >>> everything, own_org = Reach(), Reach(organization_id=3)
    >>> everything.allows(collaboration_id=1, organization_id=4, job_id=9)
    True
    >>> own_org.allows(collaboration_id=1, organization_id=4, job_id=9)
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, true
from sqlalchemy.sql.elements import SQLCoreOperations

from v6flow_server.auth.permissions import SCOPE_WIDTH, Scope
from v6flow_server.auth.principals import ContainerIdentity, Identity

Column = SQLCoreOperations[Any]


@dataclass(frozen=True)
class Reach:
    """The rows of one resource an identity may see; ``None`` in a field means "any"."""

    collaboration_ids: frozenset[int] | None = None
    organization_id: int | None = None
    job_id: int | None = None

    def condition(self, *, collaboration_id: Column, organization_id: Column,
                  job_id: Column | None = None) -> ColumnElement[bool]:
        """The SQL form: a condition on the resource's columns (a resource without jobs
        passes no ``job_id``: a job-bound reach then sees none of it)."""
        conditions: list[ColumnElement[bool]] = []
        if self.collaboration_ids is not None:
            conditions.append(collaboration_id.in_(sorted(self.collaboration_ids)))
        if self.organization_id is not None:
            conditions.append(organization_id == self.organization_id)
        if self.job_id is not None:
            conditions.append(false() if job_id is None else job_id == self.job_id)
        return and_(true(), *conditions)

    def allows(self, *, collaboration_id: Any, organization_id: Any,
               job_id: Any = None) -> bool:
        """The predicate form: the same test on plain values (e.g. an event's fields).

        A value the reach restricts must be present and equal; a missing one (None) fails.
        """
        return ((self.collaboration_ids is None or collaboration_id in self.collaboration_ids)
                and (self.organization_id is None or organization_id == self.organization_id)
                and (self.job_id is None or job_id == self.job_id))


def narrowest(*scopes: Scope | None) -> Scope | None:
    """The narrowest of the given scopes (None, "no rule", is narrower than any)."""
    if any(scope is None for scope in scopes):
        return None
    return min((s for s in scopes if s is not None), key=SCOPE_WIDTH.__getitem__, default=None)


def scope_reach(identity: Identity, scope: Scope | None) -> Reach | None:
    """What a rule of ``scope`` lets ``identity`` see (None: no rule, nothing)."""
    if scope is None:
        return None
    if scope is Scope.GLOBAL:
        return Reach()
    if scope is Scope.COLLABORATION:
        return Reach(collaboration_ids=identity.collaboration_ids)
    return Reach(organization_id=identity.organization_id)


def job_reach(identity: ContainerIdentity) -> Reach:
    """An algorithm container sees the tasks and runs of its own job, nothing else."""
    return Reach(collaboration_ids=frozenset({identity.collaboration_id}),
                 job_id=identity.job_id)
