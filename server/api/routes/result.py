"""Routes for results (the result view of runs)."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import AnyPrincipal, WorkDep
from server.api.openapi import errors
from server.api.pagination import MAX_PER_PAGE, PageDep, count, paginate_query
from server.api.params import IdPath, IdQuery
from server.api.serializers import result_out
from server.services import runs
from v6flow.schemas import Page, ResultOut

router = APIRouter(tags=["result"])


@router.get("/result", responses=errors(403))
def list_results(work: WorkDep, identity: AnyPrincipal, page: PageDep,
                 task_id: IdQuery = None, organization_id: IdQuery = None,
                 node_id: IdQuery = None, collaboration_id: IdQuery = None,
                 state: str | None = None) -> Page[ResultOut]:
    """List results, newest run first.

    With ``task_id`` and no explicit ``per_page``, every result of the task (up to the page
    limit) is on the first page: the v4 UserClient reads only one page.
    """
    stmt = runs.list_runs(session=work.session, identity=identity, task_id=task_id,
                          organization_id=organization_id, node_id=node_id,
                          collaboration_id=collaboration_id, state=state)
    if task_id is not None and not page.explicit:
        page = page.with_per_page(min(max(count(work.session, stmt), 1), MAX_PER_PAGE))
    return paginate_query(work.session, stmt, page, lambda rows: [result_out(r) for r in rows])


@router.get("/result/{run_id}", responses=errors(403, 404))
def get_result(run_id: IdPath, work: WorkDep, identity: AnyPrincipal) -> ResultOut:
    """One result."""
    return result_out(runs.get_run(session=work.session, identity=identity, run_id=run_id))
