"""Killing tasks (CONTRACT §4.6) and everything running on one node."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import ContainerIdentity, Identity
from v6flow_server.db.models import Node, Task
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.events import Outbox
from v6flow_server.services import audit
from v6flow_server.services.audit import AuditEvent
from v6flow_server.services.common import get_or_404
from v6flow_server.services.organizations import NO_PERMISSION
from v6flow_server.services.runs import kill_runs
from v6flow_server.services.task_state import task_is_finished, task_status


def _may_send(identity: Identity, *, collaboration_id: int, organization_id: int) -> bool:
    if isinstance(identity, ContainerIdentity):
        return False  # containers kill only within their job (:func:`kill_task`)
    scope = identity.scope(Resource.EVENT, Operation.SEND)
    return scope is Scope.GLOBAL or (
        scope is Scope.COLLABORATION and collaboration_id in identity.collaboration_ids
    ) or (scope is not None and organization_id == identity.organization_id)


def kill_task(*, session: Session, identity: Identity, task_id: int,
              outbox: Outbox) -> list[dict[str, Any]]:
    """Kill the unfinished runs of a task and of its direct children.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (task already finished).
    """
    task = get_or_404(session, Task, task_id, "Task")
    own_job = isinstance(identity, ContainerIdentity) and task.job_id == identity.job_id
    if not own_job and not _may_send(identity, collaboration_id=task.collaboration_id,
                                     organization_id=task.init_org_id):
        raise ForbiddenError(NO_PERMISSION)
    if task_is_finished(task):
        raise BadRequestError(
            f"Task {task_id} already finished with status '{task_status(task).value}'")
    children = list(session.scalars(select(Task).where(Task.parent_id == task.id)))
    kill_list = kill_runs(tasks=[task, *children], outbox=outbox)
    audit.record(session, event=AuditEvent.TASK_KILLED, actor=identity, target=("task", task.id),
                 run_ids=[item["run_id"] for item in kill_list])
    session.flush()
    return kill_list


def kill_node_tasks(*, session: Session, identity: Identity, node_id: int,
                    outbox: Outbox) -> list[dict[str, Any]]:
    """Kill every unfinished run of a node's organization in its collaboration.

    Raises:
        NotFoundError, ForbiddenError.
    """
    node = get_or_404(session, Node, node_id, "Node")
    if not _may_send(identity, collaboration_id=node.collaboration_id,
                     organization_id=node.organization_id):
        raise ForbiddenError(NO_PERMISSION)
    tasks = session.scalars(select(Task).where(Task.collaboration_id == node.collaboration_id))
    kill_list = kill_runs(tasks=tasks, outbox=outbox, organization_id=node.organization_id)
    audit.record(session, event=AuditEvent.NODE_TASKS_KILLED, actor=identity,
                 target=("node", node.id), run_ids=[item["run_id"] for item in kill_list])
    session.flush()
    return kill_list
