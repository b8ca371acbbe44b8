"""Routes for tasks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from server.api.deps import AnyPrincipal, UserOrContainerPrincipal, UserPrincipal, WorkDep
from server.api.pagination import PageDep, paginate_list, paginate_query
from server.api.shapes import result_out, run_out, task_out
from server.db.models import Task
from server.services import runs, tasks
from server.services.task_state import task_status
from v6flow.schemas import TaskCreate

router = APIRouter(tags=["task"])
IncludeQuery = Annotated[list[str] | None, Query()]


def _shape(session: Session, rows: Iterable[Task],
           include: list[str] | None) -> list[dict[str, Any]]:
    include = include or []
    shaped = []
    for task in rows:
        run_list = results = None
        if "runs" in include:
            index = runs.node_index(session, task.runs)
            run_list = [run_out(r, index) for r in task.runs]
        if "results" in include:
            results = [result_out(r) for r in task.runs]
        shaped.append(task_out(task, runs=run_list, results=results))
    return shaped


@router.post("/task", status_code=201)
def create_task(body: TaskCreate, work: WorkDep,
                identity: UserOrContainerPrincipal) -> dict[str, Any]:
    """Create a task (by a user, or a subtask by an algorithm container)."""
    task = tasks.create_task(session=work.session, identity=identity, data=body,
                             outbox=work.outbox)
    return task_out(task)


@router.get("/task")
def list_tasks(request: Request, work: WorkDep, identity: AnyPrincipal, page: PageDep,
               include: IncludeQuery = None, init_org_id: int | None = None,
               init_user_id: int | None = None, collaboration_id: int | None = None,
               study_id: int | None = None, image: str | None = None,
               parent_id: int | None = None, job_id: int | None = None,
               name: str | None = None, description: str | None = None,
               database: str | None = None, run_id: int | None = None,
               status: str | None = None, store_id: int | None = None,
               is_user_created: bool | None = None) -> JSONResponse:
    """List the tasks the caller may see."""
    stmt = tasks.list_tasks(
        identity=identity, init_org_id=init_org_id, init_user_id=init_user_id,
        collaboration_id=collaboration_id, image=image, parent_id=parent_id, job_id=job_id,
        name=name, description=description, database=database, run_id=run_id,
        store_id=store_id, is_user_created=is_user_created, study_id=study_id)

    def shape(rows: Any) -> list[dict[str, Any]]:
        return _shape(work.session, rows, include)

    if status is not None:
        matching = tasks.with_status(list(work.session.scalars(stmt)), status)
        return paginate_list(request, matching, page, shape)
    return paginate_query(request, work.session, stmt, page, shape)


@router.get("/task/{task_id}")
def get_task(task_id: int, work: WorkDep, identity: AnyPrincipal,
             include: IncludeQuery = None) -> dict[str, Any]:
    """One task; ``include=results`` / ``include=runs`` embed them."""
    task = tasks.get_task(session=work.session, identity=identity, task_id=task_id)
    return _shape(work.session, [task], include)[0]


@router.get("/task/{task_id}/status")
def get_task_status(task_id: int, work: WorkDep,
                    identity: UserOrContainerPrincipal) -> dict[str, str]:
    """The derived status of a task (what ``wait_for_results`` polls)."""
    task = tasks.get_task(session=work.session, identity=identity, task_id=task_id)
    return {"status": task_status(task).value}


@router.delete("/task/{task_id}")
def delete_task(task_id: int, work: WorkDep, identity: UserPrincipal) -> dict[str, str]:
    """Delete a task with its runs and subtasks (unfinished runs are killed first)."""
    tasks.delete_task(session=work.session, identity=identity, task_id=task_id,
                      outbox=work.outbox)
    return {"msg": f"Task id={task_id} and its algorithm run data have been successfully deleted"}
