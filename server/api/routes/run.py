"""Routes for runs: listing, node updates and live logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from server.api.deps import AnyPrincipal, NodePrincipal, WorkDep
from server.api.pagination import PageDep, paginate_query
from server.api.shapes import run_out
from server.services import runs
from v6flow.schemas import RunLogLines, RunUpdate

router = APIRouter(tags=["run"])
IncludeQuery = Annotated[list[str] | None, Query()]


@router.get("/run")
def list_runs(request: Request, work: WorkDep, identity: AnyPrincipal, page: PageDep,
              include: IncludeQuery = None, task_id: int | None = None,
              organization_id: int | None = None, node_id: int | None = None,
              collaboration_id: int | None = None, state: str | None = None,
              status: str | None = None) -> JSONResponse:
    """List visible runs, newest first; ``state=open`` gives the unfinished ones."""
    stmt = runs.list_runs(session=work.session, identity=identity, task_id=task_id,
                          organization_id=organization_id, node_id=node_id,
                          collaboration_id=collaboration_id, state=state, status=status)
    with_task = "task" in (include or [])

    def shape(rows: Any) -> list[dict[str, Any]]:
        index = runs.node_index(work.session, rows)
        return [run_out(r, index, include_task=with_task) for r in rows]

    return paginate_query(request, work.session, stmt, page, shape)


@router.get("/run/{run_id}")
def get_run(run_id: int, work: WorkDep, identity: AnyPrincipal,
            include: IncludeQuery = None) -> dict[str, Any]:
    """One run; ``include=task`` embeds the task."""
    run = runs.get_run(session=work.session, identity=identity, run_id=run_id)
    return run_out(run, runs.node_index(work.session, [run]),
                   include_task="task" in (include or []))


@router.patch("/run/{run_id}")
def update_run(run_id: int, body: RunUpdate, work: WorkDep,
               node: NodePrincipal) -> dict[str, Any]:
    """Update a run (owning node only); absent fields are left unchanged."""
    run = runs.update_run(session=work.session, identity=node, run_id=run_id, data=body,
                          outbox=work.outbox)
    return run_out(run, runs.node_index(work.session, [run]))


@router.post("/run/{run_id}/log")
def append_log(run_id: int, body: RunLogLines, work: WorkDep,
               node: NodePrincipal) -> dict[str, Any]:
    """Append live log lines to a running run (owning node only)."""
    runs.append_log(session=work.session, identity=node, run_id=run_id, lines=body.lines,
                    outbox=work.outbox)
    return {"msg": "log lines appended", "lines": len(body.lines)}
