"""A task's status and finish time, derived from its runs (CONTRACT §1.8)."""

from __future__ import annotations

from datetime import datetime

from v6flow.status import RunStatus, derive_task_status
from v6flow_server.db.models import Task


def task_status(task: Task) -> RunStatus:
    """The derived status of ``task``."""
    return derive_task_status(run.status for run in task.runs)


def task_is_finished(task: Task) -> bool:
    """Completed or failed."""
    return task_status(task).is_finished


def task_finished_at(task: Task) -> datetime | None:
    """Latest run ``finished_at``, only when the task is completed."""
    if task_status(task) is not RunStatus.COMPLETED:
        return None
    moments = [run.finished_at for run in task.runs if run.finished_at is not None]
    return max(moments) if moments else None
