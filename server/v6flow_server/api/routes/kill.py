"""Routes that stop running algorithms."""

from __future__ import annotations

from fastapi import APIRouter

from v6flow.schemas import KilledRun, KillNodeTasks, KillOut, KillTask
from v6flow_server.api.deps import UserOrContainerPrincipal, UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.services import kill

router = APIRouter(tags=["kill"])


@router.post("/kill/task", responses=errors(403, 404))
def kill_task(body: KillTask, work: WorkDep, identity: UserOrContainerPrincipal) -> KillOut:
    """Kill a task's unfinished runs (and those of its direct children).

    An algorithm container may kill only tasks of its own job (subtasks it created).
    """
    kill_list = kill.kill_task(session=work.session, identity=identity, task_id=body.id,
                               outbox=work.outbox)
    return KillOut(msg="Nodes have been instructed to kill the task's runs",
                   kill_list=[KilledRun(**item) for item in kill_list])


@router.post("/kill/node/tasks", responses=errors(403, 404))
def kill_node_tasks(body: KillNodeTasks, work: WorkDep, identity: UserPrincipal) -> KillOut:
    """Kill every unfinished run on one node."""
    kill_list = kill.kill_node_tasks(session=work.session, identity=identity, node_id=body.id,
                                     outbox=work.outbox)
    return KillOut(msg="The node has been instructed to kill its runs",
                   kill_list=[KilledRun(**item) for item in kill_list])
