"""Routes for results (the result view of runs)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from v6flow.schemas import Page, ResultOut
from v6flow_server.api.deps import AnyPrincipal, StateDep, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, StreamedRows, stream_query, stream_whole
from v6flow_server.api.params import IdPath, IdQuery, OpenStateQuery
from v6flow_server.api.responses import model_response
from v6flow_server.api.serializers import result_out
from v6flow_server.db.models import Run
from v6flow_server.services import runs

router = APIRouter(tags=["result"])
RESULT_FIELDS = runs.RunFields(result=True)


def _shape(session: Session, ids: Sequence[int]) -> dict[int, BaseModel]:
    return {run.id: result_out(run)
            for run in runs.load_runs(session, ids, RESULT_FIELDS, with_task=False,
                                      with_ports=False)}


RESULT_ROWS = StreamedRows(
    Run.id, lambda session, ids: runs.stored_sizes(session, ids, RESULT_FIELDS), _shape,
    size=runs.stored_size(RESULT_FIELDS))


@router.get("/result", response_model=Page[ResultOut], responses=errors(403))
def list_results(work: WorkDep, identity: AnyPrincipal, page: PageDep, app_state: StateDep,
                 task_id: IdQuery = None, organization_id: IdQuery = None,
                 node_id: IdQuery = None, collaboration_id: IdQuery = None,
                 state: OpenStateQuery = None) -> Response:
    """List results, newest run first.

    With ``task_id`` and no explicit ``per_page``, every result of the task (up to the page
    limit) is on the first page: the v4 UserClient reads only one page. The page is streamed,
    ``page_bytes`` of results read at a time, so a page of large results does not have to fit
    in memory.
    """
    stmt = runs.list_runs(session=work.session, identity=identity, task_id=task_id,
                          organization_id=organization_id, node_id=node_id,
                          collaboration_id=collaboration_id, state=state)
    if task_id is not None and not page.explicit:
        return stream_whole(work.session, stmt, page, RESULT_ROWS,
                            session_factory=app_state.session_factory,
                            budget=app_state.settings.page_bytes)
    return stream_query(work.session, stmt, page, RESULT_ROWS,
                        session_factory=app_state.session_factory,
                        budget=app_state.settings.page_bytes)


@router.get("/result/{run_id}", response_model=ResultOut, responses=errors(403, 404))
def get_result(run_id: IdPath, work: WorkDep, identity: AnyPrincipal) -> Response:
    """One result."""
    return model_response(
        result_out(runs.get_run(session=work.session, identity=identity, run_id=run_id)))
