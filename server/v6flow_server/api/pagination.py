"""v4 pagination: ``{"data", "links"}`` bodies plus ``total-count`` and ``Link`` headers.

``PageDep`` reads ``page``/``per_page`` and carries the request (for the links) and the
response (for the headers), so a route only hands its query and a row shaper to
:func:`paginate_query` and returns the :class:`~v6flow.schemas.Page` it gets back.

Pages whose rows carry large stored text (run inputs, results, logs) go through
:func:`stream_query` instead: it selects the page's ids, asks the database how many bytes each
row carries, and streams the JSON while loading the rows a byte budget at a time, so memory
is bounded by the budget (or one row), not by ``per_page`` times the largest row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

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


async def page_params(
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


def _page_links(total: int, params: PageParams) -> tuple[PageLinks, dict[str, str]]:
    last = max(1, math.ceil(total / params.per_page))
    links = _links(params.request, params.page, last)
    headers = {
        "total-count": str(total),
        "Link": ",".join(f"<{url}>; rel={name}" for name, url in links.model_dump().items()
                         if url is not None),
        "access-control-expose-headers": "total-count, Link",
    }
    return links, headers


def page_of(data: list[ItemT], *, total: int, params: PageParams) -> Page[ItemT]:
    """The page of already-shaped items; sets the ``total-count`` and ``Link`` headers."""
    links, headers = _page_links(total, params)
    params.response.headers.update(headers)
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
    return page_of(shape(rows), total=_total(session, stmt, params, len(rows)), params=params)


def _total(session: Session, stmt: Select[Any], params: PageParams, on_page: int) -> int:
    """How many rows ``stmt`` selects; a first page that is not full holds them all (no
    ``COUNT`` query)."""
    if params.page == 1 and on_page < params.per_page:
        return on_page
    return count(session, stmt)


def paginate_list(items: Sequence[T], params: PageParams,
                  shape: Callable[[Sequence[T]], list[ItemT]]) -> Page[ItemT]:
    """Page a list that had to be filtered in Python."""
    start = (params.page - 1) * params.per_page
    window = items[start:start + params.per_page]
    return page_of(shape(window), total=len(items), params=params)


def size_groups(ids: Sequence[int], sizes: Mapping[int, int], budget: int) -> list[list[int]]:
    """Split ``ids`` (in order) into groups of at most ``budget`` bytes; a larger row is alone."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for row_id in ids:
        size = sizes.get(row_id, 0)
        if current and used + size > budget:
            groups.append(current)
            current, used = [], 0
        current.append(row_id)
        used += size
    if current:
        groups.append(current)
    return groups


@dataclass(frozen=True)
class StreamedRows:
    """How :func:`stream_query` reads one kind of row.

    Attributes:
        id_column: the primary key column of the selected rows.
        sizes: bytes of large stored text each id carries (as the database counts them).
        shape: loads the rows of some ids in a session and shapes them, in any order.
    """

    id_column: Any
    sizes: Callable[[Session, Sequence[int]], Mapping[int, int]]
    shape: Callable[[Session, Sequence[int]], dict[int, BaseModel]]
    #: The SQL expression of ``sizes`` for one selected row, when it can be read with the
    #: ids (one query less).
    size: Any = None


def stream_query(session: Session, stmt: Select[Any], params: PageParams, rows: StreamedRows,
                 *, session_factory: sessionmaker[Session], budget: int,
                 total: int | None = None) -> Response:
    """Page ``stmt`` in SQL and stream ``{"data", "links"}``, loading ``budget`` bytes at a time.

    The ids and the total (unless given) are read now (in the request's transaction, so
    errors are still answered normally); the rows are read while the body is sent, each group
    in its own short session. A row deleted in between is left out. A page whose rows fit in
    one budget is read at once, in the request's transaction, and answered whole.
    """
    ids, sizes = _ids(session, stmt, rows, params.per_page, (params.page - 1) * params.per_page)
    if total is None:
        total = _total(session, stmt, params, len(ids))
    return stream_ids(session, ids, total, params, rows, session_factory=session_factory,
                      budget=budget, sizes=sizes)


def stream_whole(session: Session, stmt: Select[Any], params: PageParams, rows: StreamedRows,
                 *, session_factory: sessionmaker[Session], budget: int) -> Response:
    """:func:`stream_query` of every row of ``stmt`` (at most :data:`MAX_PER_PAGE`) on the
    first page: ``per_page`` is their number (at least 1).

    The ids are read first, one more than a page may hold: the number of rows is then known
    without a ``COUNT`` query, unless there are more than a page holds.
    """
    if params.page != 1:
        total = count(session, stmt)
        return stream_query(session, stmt, params.with_per_page(min(max(total, 1),
                                                                    MAX_PER_PAGE)),
                            rows, session_factory=session_factory, budget=budget, total=total)
    ids, sizes = _ids(session, stmt, rows, MAX_PER_PAGE + 1, 0)
    if len(ids) > MAX_PER_PAGE:
        total = count(session, stmt)
        ids = ids[:MAX_PER_PAGE]
    else:
        total = len(ids)
    return stream_ids(session, ids, total, params.with_per_page(min(max(total, 1),
                                                                    MAX_PER_PAGE)),
                      rows, session_factory=session_factory, budget=budget, sizes=sizes)


def _ids(session: Session, stmt: Select[Any], rows: StreamedRows, limit: int,
         offset: int) -> tuple[list[int], Mapping[int, int] | None]:
    """The ids of a page of ``stmt``, with their sizes when ``rows`` can read them along."""
    if rows.size is None:
        return list(session.scalars(stmt.with_only_columns(rows.id_column).limit(limit)
                                    .offset(offset))), None
    pairs = session.execute(stmt.with_only_columns(rows.id_column, rows.size).limit(limit)
                            .offset(offset)).all()
    return [row_id for row_id, _ in pairs], {row_id: int(size or 0) for row_id, size in pairs}


def stream_ids(session: Session, ids: Sequence[int], total: int, params: PageParams,
               rows: StreamedRows, *, session_factory: sessionmaker[Session],
               budget: int, sizes: Mapping[int, int] | None = None) -> Response:
    """Stream the page of already chosen ``ids`` (see :func:`stream_query`); ``sizes``: the
    rows' sizes when already read."""
    if sizes is None:
        sizes = rows.sizes(session, ids) if ids else {}
    links, headers = _page_links(total, params)
    groups = size_groups(ids, sizes, budget)
    if len(groups) <= 1:  # one budget's worth: no second transaction, nothing to stream
        shaped = rows.shape(session, ids) if ids else {}
        items = [to_json(item) for row_id in ids if (item := shaped.get(row_id)) is not None]
        return Response(b'{"data":[' + b",".join(items) + b'],"links":'
                        + links.model_dump_json().encode() + b"}",
                        media_type="application/json", headers=headers)

    def body() -> Iterator[bytes]:
        yield b'{"data":['
        first = True
        for group in groups:
            # Shaped before the first byte is sent: the session (and SQLite's lock) is not
            # held while a slow client reads.
            with session_factory() as group_session:
                shaped = rows.shape(group_session, group)
            for row_id in group:
                item = shaped.pop(row_id, None)
                if item is None:
                    continue
                yield (b"" if first else b",") + to_json(item)
                first = False
        yield b'],"links":' + links.model_dump_json().encode() + b"}"

    return StreamingResponse(body(), media_type="application/json", headers=headers)
