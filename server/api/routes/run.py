"""Routes for runs: listing, node updates and live logs."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from server.api.deps import AnyPrincipal, NodePrincipal, WorkDep
from server.api.openapi import errors
from server.api.pagination import PageDep, paginate_query
from server.api.params import IdPath, IdQuery, IncludeQuery
from server.api.serializers import run_out
from server.db.models import Run
from server.services import runs
from v6flow.schemas import LogAppendOut, Page, RunLogLines, RunOut, RunUpdate
from v6flow.status import RunStatus

router = APIRouter(tags=["run"])


@router.get("/run", responses=errors(403))
def list_runs(work: WorkDep, identity: AnyPrincipal, page: PageDep,
              include: IncludeQuery = None, task_id: IdQuery = None,
              organization_id: IdQuery = None, node_id: IdQuery = None,
              collaboration_id: IdQuery = None, state: str | None = None,
              status: RunStatus | None = None) -> Page[RunOut]:
    """List visible runs, newest first; ``state=open`` gives the unfinished ones."""
    stmt = runs.list_runs(session=work.session, identity=identity, task_id=task_id,
                          organization_id=organization_id, node_id=node_id,
                          collaboration_id=collaboration_id, state=state,
                          status=status.value if status is not None else None)
    with_task = "task" in (include or [])

    def shape(rows: Sequence[Run]) -> list[RunOut]:
        index = runs.node_index(work.session, rows)
        return [run_out(r, index, include_task=with_task) for r in rows]

    return paginate_query(work.session, stmt, page, shape)


@router.get("/run/{run_id}", responses=errors(403, 404))
def get_run(run_id: IdPath, work: WorkDep, identity: AnyPrincipal,
            include: IncludeQuery = None) -> RunOut:
    """One run; ``include=task`` embeds the task."""
    run = runs.get_run(session=work.session, identity=identity, run_id=run_id)
    return run_out(run, runs.node_index(work.session, [run]),
                   include_task="task" in (include or []))


@router.patch("/run/{run_id}", responses=errors(403, 404))
def update_run(run_id: IdPath, body: RunUpdate, work: WorkDep, node: NodePrincipal) -> RunOut:
    """Update a run (owning node only); absent fields are left unchanged."""
    run = runs.update_run(session=work.session, identity=node, run_id=run_id, data=body,
                          outbox=work.outbox)
    return run_out(run, runs.node_index(work.session, [run]))


@router.post("/run/{run_id}/log", responses=errors(403, 404))
def append_log(run_id: IdPath, body: RunLogLines, work: WorkDep,
               node: NodePrincipal) -> LogAppendOut:
    """Append live log lines to a running run (owning node only)."""
    runs.append_log(session=work.session, identity=node, run_id=run_id, lines=body.lines,
                    outbox=work.outbox)
    return LogAppendOut(msg="log lines appended", lines=len(body.lines))
