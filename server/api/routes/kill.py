"""Routes that stop running algorithms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.api.deps import UserOrContainerPrincipal, UserPrincipal, WorkDep
from server.services import kill
from v6flow.schemas import KillNodeTasks, KillTask

router = APIRouter(tags=["kill"])


@router.post("/kill/task")
def kill_task(body: KillTask, work: WorkDep,
              identity: UserOrContainerPrincipal) -> dict[str, Any]:
    """Kill a task's unfinished runs (and those of its direct children).

    An algorithm container may kill only tasks of its own job (subtasks it created).
    """
    kill_list = kill.kill_task(session=work.session, identity=identity, task_id=body.id,
                               outbox=work.outbox)
    return {"msg": "Nodes have been instructed to kill the task's runs", "kill_list": kill_list}


@router.post("/kill/node/tasks")
def kill_node_tasks(body: KillNodeTasks, work: WorkDep,
                    identity: UserPrincipal) -> dict[str, Any]:
    """Kill every unfinished run on one node."""
    kill_list = kill.kill_node_tasks(session=work.session, identity=identity, node_id=body.id,
                                     outbox=work.outbox)
    return {"msg": "The node has been instructed to kill its runs", "kill_list": kill_list}
