"""Routes for results (the result view of runs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from server.api.deps import AnyPrincipal, WorkDep
from server.api.pagination import PageDep, PageParams, paginate_query
from server.api.shapes import result_out
from server.services import runs

router = APIRouter(tags=["result"])


@router.get("/result")
def list_results(request: Request, work: WorkDep, identity: AnyPrincipal, page: PageDep,
                 task_id: int | None = None, organization_id: int | None = None,
                 node_id: int | None = None, collaboration_id: int | None = None,
                 state: str | None = None) -> JSONResponse:
    """List results, newest run first.

    With ``task_id`` and no explicit ``per_page``, every result of the task is on the first
    page: the v4 UserClient reads only one page.
    """
    stmt = runs.list_runs(session=work.session, identity=identity, task_id=task_id,
                          organization_id=organization_id, node_id=node_id,
                          collaboration_id=collaboration_id, state=state)
    if task_id is not None and not page.explicit:
        total = work.session.scalar(
            select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        page = PageParams(page.page, max(total, 1), explicit=False)
    return paginate_query(request, work.session, stmt, page,
                          lambda rows: [result_out(r) for r in rows])


@router.get("/result/{run_id}")
def get_result(run_id: int, work: WorkDep, identity: AnyPrincipal) -> dict[str, Any]:
    """One result."""
    return result_out(runs.get_run(session=work.session, identity=identity, run_id=run_id))
