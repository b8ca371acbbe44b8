"""v4 pagination: ``{"data", "links"}`` bodies plus ``total-count`` and ``Link`` headers.

``PageDep`` reads ``page``/``per_page`` and carries the request (for the links) and the
response (for the headers), so a route only hands its query and a row shaper to
:func:`paginate_query` and returns the :class:`~v6flow.schemas.Page` it gets back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from v6flow.schemas import Page, PageLinks

DEFAULT_PER_PAGE = 10
#: The most items one page may hold: a page is built in memory, so this bounds it.
MAX_PER_PAGE = 1000
#: The highest page number (keeps ``(page - 1) * per_page`` inside a 64-bit offset).
MAX_PAGE = 2**31
T = TypeVar("T")
ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class PageParams:
    """``page`` (1-based) and ``per_page``; ``explicit`` tells whether the caller set per_page."""

    page: int
    per_page: int
    explicit: bool
    request: Request
    response: Response

    def with_per_page(self, per_page: int) -> PageParams:
        """The same page request with another page size."""
        return replace(self, per_page=per_page)


def page_params(
    request: Request,
    response: Response,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number.")] = 1,
    per_page: Annotated[int | None, Query(
        ge=1, le=MAX_PER_PAGE,
        description=f"Items per page (default {DEFAULT_PER_PAGE}, at most {MAX_PER_PAGE}).",
    )] = None,
) -> PageParams:
    """Read the paging query arguments."""
    return PageParams(page, per_page or DEFAULT_PER_PAGE, per_page is not None, request,
                      response)


PageDep = Annotated[PageParams, Depends(page_params)]


def _links(request: Request, page: int, last: int) -> PageLinks:
    args = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def link(number: int) -> str:
        return f"{request.url.path}?{urlencode([*args, ('page', str(number))])}"

    return PageLinks(first=link(1), self=link(page), last=link(last),
                     previous=link(page - 1) if page > 1 else None,
                     next=link(page + 1) if page < last else None)


def page_of(data: list[ItemT], *, total: int, params: PageParams) -> Page[ItemT]:
    """The page of already-shaped items; sets the ``total-count`` and ``Link`` headers."""
    last = max(1, math.ceil(total / params.per_page))
    links = _links(params.request, params.page, last)
    params.response.headers["total-count"] = str(total)
    params.response.headers["Link"] = ",".join(
        f"<{url}>; rel={name}" for name, url in links.model_dump().items() if url is not None)
    params.response.headers["access-control-expose-headers"] = "total-count, Link"
    return Page[ItemT](data=data, links=links)


def count(session: Session, stmt: Select[T]) -> int:
    """How many rows ``stmt`` selects."""
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def paginate_query(session: Session, stmt: Select[T], params: PageParams,
                   shape: Callable[[Sequence[T]], list[ItemT]]) -> Page[ItemT]:
    """Count and page a query in SQL, shape the rows."""
    rows = session.scalars(
        stmt.limit(params.per_page).offset((params.page - 1) * params.per_page)
    ).all()
    return page_of(shape(rows), total=count(session, stmt), params=params)


def paginate_list(items: Sequence[T], params: PageParams,
                  shape: Callable[[Sequence[T]], list[ItemT]]) -> Page[ItemT]:
    """Page a list that had to be filtered in Python."""
    start = (params.page - 1) * params.per_page
    window = items[start:start + params.per_page]
    return page_of(shape(window), total=len(items), params=params)
