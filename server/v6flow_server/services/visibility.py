"""Reading a resource through an identity's permissions: list the visible rows, get one.

Every resource service has the same two reads: "the rows this identity may see, filtered and
ordered by id" (a query the route pages in SQL) and "one row by id, if visible". A service
describes its resource once with :class:`Visibility` (the model, its label in error messages,
and its visibility rule) and calls :meth:`Visibility.query` and :meth:`Visibility.get`.

A visibility rule maps an identity to a SQL condition on the model and raises
``ForbiddenError`` when the identity may see none of the resource (no VIEW rule at all).

Examples:
    >>> ORGANIZATIONS = Visibility(Organization, "Organization", _visible)  # doctest: +SKIP
    >>> ORGANIZATIONS.query(identity, [(name, Organization.name.like)])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from v6flow_server.auth.principals import Identity
from v6flow_server.errors import ForbiddenError
from v6flow_server.services.common import get_or_404

#: The refusal message of every permission check (v4's text).
NO_PERMISSION = "You lack the permission to do that!"


class _HasId(Protocol):
    """A mapped class with an integer ``id`` primary key (every v6flow resource)."""

    id: ClassVar[InstrumentedAttribute[int]]


ModelT = TypeVar("ModelT", bound=_HasId)
#: A requested filter: its value (``None`` = not asked for) and the condition it selects.
Filter = tuple[Any, Callable[[Any], ColumnElement[bool]]]


@dataclass(frozen=True)
class Visibility(Generic[ModelT]):
    """How one resource is read: its model, its label and its visibility rule."""

    model: type[ModelT]
    label: str
    rule: Callable[[Identity], ColumnElement[bool]]

    def query(self, identity: Identity, filters: Iterable[Filter] = ()) -> Select[ModelT]:
        """The rows ``identity`` may see, narrowed by each filter whose value is not None.

        Raises:
            ForbiddenError: the identity may see none of the resource.
        """
        stmt = select(self.model).where(self.rule(identity)).order_by(self.model.id)
        for value, condition in filters:
            if value is not None:
                stmt = stmt.where(condition(value))
        return stmt

    def get(self, *, session: Session, identity: Identity, object_id: int) -> ModelT:
        """One row by id, if ``identity`` may see it (an unknown id is 404 for everyone).

        Raises:
            NotFoundError: no such row.
            ForbiddenError: the row exists but is not visible to the identity.
        """
        row = get_or_404(session, self.model, object_id, self.label)
        visible = select(self.model.id).where(self.model.id == object_id, self.rule(identity))
        if session.scalar(visible) is None:
            raise ForbiddenError(NO_PERMISSION)
        return row
