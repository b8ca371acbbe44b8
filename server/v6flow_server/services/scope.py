"""Does a caller's rule reach one object? The edit/delete check every admin service shares.

An object lives in some collaborations and belongs to some organizations (a node: one of
each; a study: its collaboration and its member organizations; a collaboration: itself and
no organization). A rule at scope

- GLOBAL reaches every object;
- COLLABORATION reaches the objects of the caller's collaborations, and its own organization's;
- ORGANIZATION reaches the objects of the caller's own organization;
- OWN (users only) reaches nothing here: the user services check it themselves.

Examples:
    >>> reaches(identity, Resource.NODE, Operation.DELETE,  # doctest: +SKIP
    ...         collaboration_ids=[node.collaboration_id], organization_ids=[node.organization_id])
"""

from __future__ import annotations

from collections.abc import Iterable

from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import Identity


def reaches(identity: Identity, resource: Resource, operation: Operation, *,
            collaboration_ids: Iterable[int] = (), organization_ids: Iterable[int] = ()) -> bool:
    """Whether ``identity`` may do ``operation`` on an object of ``resource`` that lives in
    ``collaboration_ids`` and belongs to ``organization_ids``."""
    scope = identity.scope(resource, operation)
    if scope is None or scope is Scope.OWN:
        return False
    if scope is Scope.GLOBAL or identity.organization_id in set(organization_ids):
        return True
    return scope is Scope.COLLABORATION and not identity.collaboration_ids.isdisjoint(
        collaboration_ids)
