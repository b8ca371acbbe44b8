"""Path and query parameter types shared by the routes.

Ids are checked against the range of a 64-bit row id, so ``/task/99999999999999999999``
is a 400 naming the parameter instead of a database overflow.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import Path as PathParam
from fastapi import Query

from v6flow.schemas import MAX_ID, SingleLine

IdPath = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A database id.")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Filter on this id.")]
TextQuery = Annotated[SingleLine | None, Query(
    max_length=1024, description="Filter; SQL LIKE wildcards allowed.")]
"""A text filter: one line, so a NUL or a control character is a 400 naming the parameter."""
OpenStateQuery = Annotated[Literal["open"] | None, Query(
    description="``open``: only runs that are not finished.")]
DateQuery = Annotated[date | None, Query(description="A day, yyyy-mm-dd.")]
IncludeQuery = Annotated[list[str] | None, Query(description="Embed related objects.")]
DeleteDependents = Annotated[bool, Query(
    description="Also delete what depends on the object (named in the 400 answered without "
                "it).")]
