"""Run and task status strings of the vantage6 v4 contract (CONTRACT §1.8)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class RunStatus(StrEnum):
    """Every status a run can have; the values are the wire strings."""

    PENDING = "pending"
    INITIALIZING = "initializing"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    START_FAILED = "start failed"
    NO_DOCKER_IMAGE = "non-existing Docker image"
    CRASHED = "crashed"
    KILLED = "killed by user"
    NOT_ALLOWED = "not allowed"
    UNKNOWN_ERROR = "unknown error"

    @property
    def is_failed(self) -> bool:
        """Anything that is not pending, initializing, active or completed."""
        return self not in _NOT_FAILED

    @property
    def is_finished(self) -> bool:
        """Completed or failed."""
        return self is RunStatus.COMPLETED or self.is_failed


_NOT_FAILED = frozenset(
    {RunStatus.PENDING, RunStatus.INITIALIZING, RunStatus.ACTIVE, RunStatus.COMPLETED}
)


def derive_task_status(run_statuses: Iterable[str]) -> RunStatus:
    """Derive a task's status from its runs' statuses, exactly as the v4 server does."""
    statuses = [RunStatus(s) for s in run_statuses]
    failed = {s for s in statuses if s.is_failed}
    if failed:
        return failed.pop() if len(failed) == 1 else RunStatus.FAILED
    for candidate in (RunStatus.ACTIVE, RunStatus.INITIALIZING, RunStatus.PENDING):
        if candidate in statuses:
            return candidate
    return RunStatus.COMPLETED
