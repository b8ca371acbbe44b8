"""Runs and results: visibility, listing, node updates, live logs and kills."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select, tuple_
from sqlalchemy.orm import Session, selectinload

from server.auth.permissions import Operation, Resource, Scope
from server.auth.principals import ContainerIdentity, Identity, NodeIdentity
from server.db.models import Node, Run, Task
from server.errors import BadRequestError, ForbiddenError, UnauthorizedError
from server.events import EventName, Outbox
from server.services.common import get_or_404
from server.services.organizations import NO_PERMISSION
from server.services.reach import Reach, job_reach, narrowest, scope_reach
from v6flow.schemas import RunUpdate
from v6flow.status import RunStatus
from v6flow.wire import utcnow

ALREADY_FINISHED = "Cannot update an already finished algorithm run!"


def run_reach(identity: Identity, *, cap: Scope = Scope.GLOBAL) -> Reach | None:
    """What ``identity`` may see of runs (and their results, logs), at most as far as ``cap``.

    The one run visibility rule: REST reads use it through :func:`_visible`, the event
    stream (``run_update``, ``algorithm_log``, ``kill_containers``) through
    :meth:`Reach.allows` on ``collaboration_id``, ``organization_id`` and ``job_id``. A run's
    organization is the one it runs at; an algorithm container sees its own job only.
    """
    if isinstance(identity, ContainerIdentity):
        return job_reach(identity)
    return scope_reach(identity, narrowest(identity.scope(Resource.RUN, Operation.VIEW), cap))


def _visible(identity: Identity) -> ColumnElement[bool]:
    """The SQL condition of :func:`run_reach` (the query joins ``Run.task``)."""
    reach = run_reach(identity)
    if reach is None:
        raise ForbiddenError(NO_PERMISSION)
    return reach.condition(collaboration_id=Task.collaboration_id,
                           organization_id=Run.organization_id, job_id=Task.job_id)


def visible_runs(identity: Identity, task: Task) -> list[Run]:
    """The runs of ``task`` that ``identity`` may see (what ``include=runs/results`` embeds)."""
    reach = run_reach(identity)
    if reach is None:
        return []
    return [run for run in task.runs
            if reach.allows(collaboration_id=task.collaboration_id,
                            organization_id=run.organization_id, job_id=task.job_id)]


def list_runs(*, session: Session, identity: Identity, task_id: int | None = None,
              organization_id: int | None = None, node_id: int | None = None,
              collaboration_id: int | None = None, state: str | None = None,
              status: str | None = None) -> Select[Run]:
    """Query of the visible runs, newest first, filtered (``state=open``: not finished)."""
    stmt = (select(Run).join(Run.task).where(_visible(identity)).order_by(Run.id.desc())
            .options(selectinload(Run.task).selectinload(Task.runs),
                     selectinload(Run.task).selectinload(Task.databases)))
    if task_id is not None:
        stmt = stmt.where(Run.task_id == task_id)
    if organization_id is not None:
        stmt = stmt.where(Run.organization_id == organization_id)
    if collaboration_id is not None:
        stmt = stmt.where(Task.collaboration_id == collaboration_id)
    if node_id is not None:
        node = session.get(Node, node_id)
        if node is None:
            stmt = stmt.where(Run.id.is_(None))
        else:
            stmt = stmt.where(Run.organization_id == node.organization_id,
                              Task.collaboration_id == node.collaboration_id)
    if state == "open":
        stmt = stmt.where(Run.finished_at.is_(None))
    elif state is not None:
        raise BadRequestError("state must be 'open'")
    if status is not None:
        stmt = stmt.where(Run.status == status)
    return stmt


def node_index(session: Session, runs: Sequence[Run]) -> dict[tuple[int, int], Node]:
    """The node of each (organization, collaboration) pair the runs belong to."""
    pairs = {(run.organization_id, run.task.collaboration_id) for run in runs}
    if not pairs:
        return {}
    nodes = session.scalars(select(Node).where(
        tuple_(Node.organization_id, Node.collaboration_id).in_(list(pairs))))
    return {(n.organization_id, n.collaboration_id): n for n in nodes}


def get_run(*, session: Session, identity: Identity, run_id: int) -> Run:
    """One visible run.

    Raises:
        NotFoundError, ForbiddenError.
    """
    run = get_or_404(session, Run, run_id, "Run")
    visible = session.scalar(
        select(Run.id).join(Run.task).where(Run.id == run.id, _visible(identity)))
    if visible is None:
        raise ForbiddenError(NO_PERMISSION)
    return run


def _owned_run(session: Session, identity: NodeIdentity, run_id: int) -> Run:
    run = get_or_404(session, Run, run_id, "Run")
    if (run.organization_id != identity.organization_id
            or run.task.collaboration_id != identity.collaboration_id):
        raise UnauthorizedError("This run belongs to another node")
    return run


def _run_update_event(outbox: Outbox, run: Run) -> None:
    outbox.emit(EventName.RUN_UPDATE, collaboration_id=run.task.collaboration_id,
                run_id=run.id, task_id=run.task_id, job_id=run.task.job_id,
                organization_id=run.organization_id, status=run.status)


def update_run(*, session: Session, identity: NodeIdentity, run_id: int, data: RunUpdate,
               outbox: Outbox) -> Run:
    """Apply a node's PATCH: only fields present change; a failure fails unstarted siblings.

    Raises:
        NotFoundError, UnauthorizedError (not the owning node), BadRequestError (finished).
    """
    run = _owned_run(session, identity, run_id)
    fields = data.model_fields_set
    if run.finished_at is not None:
        if run.status == RunStatus.KILLED.value and "log" in fields:
            # The server finished the run when it was killed; the node's report that
            # follows still brings the container's log, which killed runs keep (v4 lost it).
            run.log = data.log
            _run_update_event(outbox, run)
            return run
        raise BadRequestError(ALREADY_FINISHED)
    if "status" in fields and data.status is not None:
        run.status = data.status.value
    if "started_at" in fields:
        run.started_at = data.started_at
    if "finished_at" in fields:
        run.finished_at = data.finished_at
    if "result" in fields:
        run.result = data.result
    if "log" in fields:
        run.log = data.log
    _run_update_event(outbox, run)
    if data.status is not None and data.status.is_failed:
        now = utcnow()
        for sibling in run.task.runs:
            if sibling.id != run.id and sibling.started_at is None and sibling.finished_at is None:
                sibling.status = RunStatus.FAILED.value
                sibling.finished_at = now
                _run_update_event(outbox, sibling)
    session.flush()
    return run


def append_log(*, session: Session, identity: NodeIdentity, run_id: int, lines: list[str],
               outbox: Outbox) -> Run:
    """Append live log lines of a running algorithm and emit ``algorithm_log``.

    Raises:
        NotFoundError, UnauthorizedError (not the owning node), BadRequestError (finished).
    """
    run = _owned_run(session, identity, run_id)
    if run.finished_at is not None:
        raise BadRequestError(ALREADY_FINISHED)
    if lines:
        run.log = (run.log or "") + "".join(f"{line}\n" for line in lines)
        outbox.emit(EventName.ALGORITHM_LOG, collaboration_id=run.task.collaboration_id,
                    run_id=run.id, task_id=run.task_id, job_id=run.task.job_id,
                    organization_id=run.organization_id, lines=lines)
    session.flush()
    return run


def kill_runs(*, tasks: Iterable[Task], outbox: Outbox,
              organization_id: int | None = None) -> list[dict[str, Any]]:
    """Mark the unfinished runs of ``tasks`` killed and tell the nodes (``kill_containers``).

    With ``organization_id``, only that organization's runs are killed. One
    ``kill_containers`` event goes out per collaboration and organization, so each stream
    gets exactly the runs it may see (a node acts on its own organization's items anyway).
    """
    now = utcnow()
    per_organization: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for task in tasks:
        for run in task.runs:
            if run.finished_at is not None or RunStatus(run.status).is_finished:
                continue
            if organization_id is not None and run.organization_id != organization_id:
                continue
            run.status = RunStatus.KILLED.value
            run.finished_at = now
            _run_update_event(outbox, run)
            per_organization.setdefault((task.collaboration_id, run.organization_id), []).append(
                {"task_id": task.id, "run_id": run.id, "organization_id": run.organization_id})
    for (collaboration_id, _organization), kill_list in per_organization.items():
        outbox.emit(EventName.KILL_CONTAINERS, collaboration_id=collaboration_id,
                    kill_list=kill_list)
    return [item for items in per_organization.values() for item in items]
