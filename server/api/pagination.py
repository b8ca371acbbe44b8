"""v4 pagination: ``{"data", "links"}`` bodies plus ``total-count`` and ``Link`` headers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

DEFAULT_PER_PAGE = 10
T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    """``page`` (1-based) and ``per_page``; ``explicit`` tells whether the caller set per_page."""

    page: int
    per_page: int
    explicit: bool


def page_params(
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int | None, Query(ge=1)] = None,
) -> PageParams:
    """Read the paging query arguments."""
    return PageParams(page, per_page or DEFAULT_PER_PAGE, per_page is not None)


PageDep = Annotated[PageParams, Depends(page_params)]


def _links(request: Request, page: int, last: int) -> dict[str, str]:
    args = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def link(number: int) -> str:
        return f"{request.url.path}?{urlencode([*args, ('page', str(number))])}"

    links = {"first": link(1), "self": link(page), "last": link(last)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < last:
        links["next"] = link(page + 1)
    return links


def page_response(request: Request, data: list[dict[str, Any]], *, total: int,
                  params: PageParams) -> JSONResponse:
    """Build the paginated response for one page of already-shaped items."""
    last = max(1, math.ceil(total / params.per_page))
    links = _links(request, params.page, last)
    header = ",".join(f"<{url}>; rel={rel}" for rel, url in links.items())
    return JSONResponse(
        {"data": data, "links": links},
        headers={"total-count": str(total), "Link": header,
                 "access-control-expose-headers": "total-count, Link"},
    )


def paginate_query(request: Request, session: Session, stmt: Select[T],
                   params: PageParams, shape: Callable[[Sequence[T]], list[dict[str, Any]]]
                   ) -> JSONResponse:
    """Count and page a query in SQL, shape the rows, answer."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(
        stmt.limit(params.per_page).offset((params.page - 1) * params.per_page)
    ).all()
    return page_response(request, shape(rows), total=total, params=params)


def paginate_list(request: Request, items: Sequence[T], params: PageParams,
                  shape: Callable[[Sequence[T]], list[dict[str, Any]]]) -> JSONResponse:
    """Page a list that had to be filtered in Python."""
    start = (params.page - 1) * params.per_page
    window = items[start:start + params.per_page]
    return page_response(request, shape(window), total=len(items), params=params)
