"""Routes for runs: listing, node updates and live logs."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from v6flow.schemas import LogAppendOut, Page, RunLogLines, RunOut, RunUpdate
from v6flow.status import RunStatus
from v6flow_server.api.deps import AnyPrincipal, NodePrincipal, StateDep, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, StreamedRows, stream_query
from v6flow_server.api.params import DateQuery, IdPath, IdQuery, IncludeQuery, OpenStateQuery
from v6flow_server.api.responses import model_response
from v6flow_server.api.serializers import run_out
from v6flow_server.db.models import Run
from v6flow_server.services import runs
from v6flow_server.state import AppState

router = APIRouter(tags=["run"])


def log_limits(state: AppState) -> runs.LogLimits:
    """The log bounds of the server's settings."""
    return runs.LogLimits(total_bytes=state.settings.max_log_bytes,
                          line_bytes=state.settings.max_log_line_bytes)


@router.get("/run", response_model=Page[RunOut], responses=errors(403))
def list_runs(work: WorkDep, identity: AnyPrincipal, page: PageDep, app_state: StateDep,
              include: IncludeQuery = None, task_id: IdQuery = None,
              organization_id: IdQuery = None, node_id: IdQuery = None,
              collaboration_id: IdQuery = None, state: OpenStateQuery = None,
              status: RunStatus | None = None,
              assigned_from: DateQuery = None, assigned_till: DateQuery = None,
              started_from: DateQuery = None, started_till: DateQuery = None,
              finished_from: DateQuery = None, finished_till: DateQuery = None,
              ) -> Response:
    """List visible runs, newest first; ``state=open`` gives the unfinished ones.

    ``assigned``/``started``/``finished`` ``_from``/``_till`` keep the runs of those days
    (v4's filters; both ends included). ``input`` is sent only with ``include=input``;
    ``include=task`` embeds the task. The page is streamed
    (see :func:`~v6flow_server.api.pagination.stream_query`).
    """
    stmt = runs.list_runs(session=work.session, identity=identity, task_id=task_id,
                          organization_id=organization_id, node_id=node_id,
                          collaboration_id=collaboration_id, state=state,
                          status=status.value if status is not None else None,
                          days=runs.RunDays(assigned=(assigned_from, assigned_till),
                                            started=(started_from, started_till),
                                            finished=(finished_from, finished_till)))
    fields = runs.RunFields(input="input" in (include or []), log=True,
                            task="task" in (include or []))

    def shape(session: Session, ids: Sequence[int]) -> dict[int, BaseModel]:
        rows = runs.load_runs(session, ids, fields)
        index = runs.node_index(session, rows)
        return {r.id: run_out(r, index, include_task=fields.task, include_input=fields.input)
                for r in rows}

    rows = StreamedRows(Run.id, lambda session, ids: runs.stored_sizes(session, ids, fields),
                        shape, size=runs.stored_size(fields))
    return stream_query(work.session, stmt, page, rows,
                        session_factory=app_state.session_factory,
                        budget=app_state.settings.page_bytes)


@router.get("/run/{run_id}", response_model=RunOut, responses=errors(403, 404))
def get_run(run_id: IdPath, work: WorkDep, identity: AnyPrincipal,
            include: IncludeQuery = None) -> Response:
    """One run; ``include=task`` embeds the task."""
    run = runs.get_run(session=work.session, identity=identity, run_id=run_id)
    return model_response(run_out(run, runs.node_index(work.session, [run]),
                                  include_task="task" in (include or []), include_input=True))


@router.patch("/run/{run_id}", response_model=RunOut, responses=errors(403, 404))
def update_run(run_id: IdPath, body: RunUpdate, work: WorkDep, node: NodePrincipal,
               state: StateDep) -> Response:
    """Update a run (owning node only); absent fields are left unchanged."""
    run = runs.update_run(session=work.session, identity=node, run_id=run_id, data=body,
                          outbox=work.outbox, log_limits=log_limits(state))
    return model_response(run_out(run, runs.node_index(work.session, [run])))


@router.post("/run/{run_id}/log", responses=errors(403, 404))
def append_log(run_id: IdPath, body: RunLogLines, work: WorkDep, node: NodePrincipal,
               state: StateDep) -> LogAppendOut:
    """Append live log lines to a running run (owning node only); the log keeps its tail."""
    runs.append_log(session=work.session, identity=node, run_id=run_id, lines=body.lines,
                    outbox=work.outbox, log_limits=log_limits(state))
    return LogAppendOut(msg="log lines appended", lines=len(body.lines))
