"""Small helpers shared by the services."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from v6flow_server.errors import NotFoundError

ModelT = TypeVar("ModelT")


def get_or_404(session: Session, model: type[ModelT], object_id: int, label: str) -> ModelT:
    """Load a row by primary key or raise NotFoundError naming it.

    Raises:
        NotFoundError: no such row.
    """
    obj = session.get(model, object_id)
    if obj is None:
        raise NotFoundError(f"{label} id={object_id} not found")
    return obj
