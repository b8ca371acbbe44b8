"""Routes for tasks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from v6flow.schemas import Msg, Page, TaskCreate, TaskOut, TaskStatusOut
from v6flow.status import RunStatus
from v6flow_server.api.deps import (
    AnyPrincipal,
    StateDep,
    UserOrContainerPrincipal,
    UserPrincipal,
    WorkDep,
)
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import (
    PageDep,
    StreamedRows,
    paginate_list,
    paginate_query,
    stream_ids,
    stream_query,
)
from v6flow_server.api.params import IdPath, IdQuery, IncludeQuery, TextQuery
from v6flow_server.api.responses import model_response
from v6flow_server.api.serializers import result_out, run_out, task_out
from v6flow_server.auth.principals import Identity
from v6flow_server.db.models import Task
from v6flow_server.services import runs, tasks
from v6flow_server.services.task_state import task_status

router = APIRouter(tags=["task"])


def _shape(session: Session, identity: Identity, rows: Iterable[Task],
           include: list[str] | None) -> list[TaskOut]:
    include = include or []
    shaped = []
    for task in rows:
        run_list = results = None
        seen = runs.visible_runs(identity, task) if {"runs", "results"} & set(include) else []
        if "runs" in include:
            index = runs.node_index(session, seen)
            run_list = [run_out(r, index) for r in seen]
        if "results" in include:
            results = [result_out(r) for r in seen]
        shaped.append(task_out(task, runs=run_list, results=results))
    return shaped


@router.post("/task", status_code=201, response_model=TaskOut, responses=errors(403, 404))
def create_task(body: TaskCreate, work: WorkDep, identity: UserOrContainerPrincipal,
                state: StateDep) -> Response:
    """Create a task (by a user, or a subtask by an algorithm container)."""
    task = tasks.create_task(session=work.session, identity=identity, data=body,
                             outbox=work.outbox,
                             max_job_tasks=state.settings.max_tasks_per_job)
    return model_response(task_out(task), status_code=201)


def _embedded_rows(identity: Identity, include: list[str] | None) -> StreamedRows:
    """Tasks with embedded runs (their logs) or results, loaded a byte budget at a time."""
    wanted = set(include or [])
    fields = runs.RunFields(result="results" in wanted, log="runs" in wanted)

    def shape(session: Session, ids: Sequence[int]) -> dict[int, BaseModel]:
        return {t.id: _shape(session, identity, [t], include)[0]
                for t in runs.load_tasks(session, ids, fields)}

    return StreamedRows(Task.id, lambda session, ids: runs.task_sizes(session, ids, fields),
                        shape)


@router.get("/task", response_model=Page[TaskOut], responses=errors(403))
def list_tasks(work: WorkDep, identity: AnyPrincipal, page: PageDep, app_state: StateDep,
               include: IncludeQuery = None, init_org_id: IdQuery = None,
               init_user_id: IdQuery = None, collaboration_id: IdQuery = None,
               study_id: IdQuery = None, image: TextQuery = None,
               parent_id: IdQuery = None, job_id: IdQuery = None,
               name: TextQuery = None, description: TextQuery = None,
               database: TextQuery = None, run_id: IdQuery = None,
               status: RunStatus | None = None, store_id: IdQuery = None,
               is_user_created: bool | None = None) -> Page[TaskOut] | Response:
    """List the tasks the caller may see.

    With ``include=runs`` or ``include=results`` the page is streamed, ``page_bytes`` of
    embedded logs and results read at a time.
    """
    stmt = tasks.list_tasks(
        identity=identity, init_org_id=init_org_id, init_user_id=init_user_id,
        collaboration_id=collaboration_id, image=image, parent_id=parent_id, job_id=job_id,
        name=name, description=description, database=database, run_id=run_id,
        store_id=store_id, is_user_created=is_user_created, study_id=study_id)

    def shape(rows: Sequence[Task]) -> list[TaskOut]:
        return _shape(work.session, identity, rows, include)

    embedding = bool({"runs", "results"} & set(include or []))
    factory, budget = app_state.session_factory, app_state.settings.page_bytes
    if status is not None:
        matching = tasks.with_status(list(work.session.scalars(stmt)), status.value)
        if embedding:
            start = (page.page - 1) * page.per_page
            ids = [t.id for t in matching[start:start + page.per_page]]
            return stream_ids(work.session, ids, len(matching), page,
                              _embedded_rows(identity, include), session_factory=factory,
                              budget=budget)
        return paginate_list(matching, page, shape)
    if embedding:
        return stream_query(work.session, stmt, page, _embedded_rows(identity, include),
                            session_factory=factory, budget=budget)
    return paginate_query(work.session, stmt, page, shape)


@router.get("/task/{task_id}", response_model=TaskOut, responses=errors(403, 404))
def get_task(task_id: IdPath, work: WorkDep, identity: AnyPrincipal,
             include: IncludeQuery = None) -> Response:
    """One task; ``include=results`` / ``include=runs`` embed them."""
    task = tasks.get_task(session=work.session, identity=identity, task_id=task_id)
    return model_response(_shape(work.session, identity, [task], include)[0])


@router.get("/task/{task_id}/status", response_model=TaskStatusOut,
            responses=errors(403, 404))
def get_task_status(task_id: IdPath, work: WorkDep,
                    identity: UserOrContainerPrincipal) -> Response:
    """The derived status of a task (what ``wait_for_results`` polls)."""
    task = tasks.get_task(session=work.session, identity=identity, task_id=task_id)
    return model_response(TaskStatusOut(status=task_status(task)))


@router.delete("/task/{task_id}", responses=errors(403, 404))
def delete_task(task_id: IdPath, work: WorkDep, identity: UserPrincipal) -> Msg:
    """Delete a task with its runs and subtasks (unfinished runs are killed first)."""
    tasks.delete_task(session=work.session, identity=identity, task_id=task_id,
                      outbox=work.outbox)
    return Msg(msg=f"Task id={task_id} and its algorithm run data have been successfully "
                   "deleted")
