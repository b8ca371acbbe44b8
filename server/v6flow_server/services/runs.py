"""Runs and results: visibility, listing, node updates, live logs, kills and offline nodes.

Listing is split in two so that a page never holds more large text than it must:
:func:`list_runs` selects and filters (no row is loaded), :func:`stored_sizes` tells how many
bytes of input/result/log each run carries, and :func:`load_runs` loads a few runs with only
the large columns that will be sent.

A run's log is bounded (:class:`LogLimits`): a live line longer than ``line_bytes`` is cut,
and a log longer than ``total_bytes`` keeps its tail under a first line saying so.

A run's input or result may name a blob instead of carrying the payload (``blob_storage_used``
and ``result_in_blob``): the node's PATCH names its own upload (:func:`update_run`), and
:func:`readable_blob` decides who may stream it (:mod:`v6flow_server.services.blobs` has the rules).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, defer, joinedload, lazyload, selectinload, undefer

from v6flow.schemas import RunUpdate
from v6flow.status import RunStatus
from v6flow.wire import format_datetime, utcnow
from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import ContainerIdentity, Identity, NodeIdentity
from v6flow_server.db.models import Authenticatable, Blob, Node, Run, Task
from v6flow_server.errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError
from v6flow_server.events import EventName, Outbox
from v6flow_server.services import blobs
from v6flow_server.services.common import get_or_404
from v6flow_server.services.organizations import NO_PERMISSION
from v6flow_server.services.reach import Reach, job_reach, narrowest, scope_reach

ALREADY_FINISHED = "Cannot update an already finished algorithm run!"
LOG_NOTE = "[v6flow server]"
TRUNCATED_LOG = f"{LOG_NOTE} log truncated: only its last {{limit}} bytes are kept\n"
CUT_LINE = " [line cut]"
#: Statuses of a run a node has started and not yet reported finished.
STARTED = (RunStatus.INITIALIZING.value, RunStatus.ACTIVE.value)
_NOT_STORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class LogLimits:
    """How much log a run keeps: the whole stored log, and one live line."""

    total_bytes: int
    line_bytes: int


def _cut(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` UTF-8 bytes (never inside a character)."""
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", errors="ignore")


def storable(text: str) -> str:
    """``text`` with what no database can store (NUL, unpaired surrogates) replaced by U+FFFD.

    Logs are whatever a container printed: they are kept, not refused.
    """
    return _NOT_STORABLE.sub("\ufffd", text)


def bounded_log(log: str | None, limits: LogLimits) -> str | None:
    """The tail of ``log`` that fits ``limits.total_bytes``, saying when the head was dropped."""
    if log is None:
        return None
    log = storable(log)
    raw = log.encode("utf-8")
    if len(raw) <= limits.total_bytes:
        return log
    note = TRUNCATED_LOG.format(limit=limits.total_bytes)
    if log.startswith(note):  # truncated before: drop the old note, then keep the tail
        raw = raw[len(note.encode()):]
    keep = max(limits.total_bytes - len(note.encode()), 0)
    tail = raw[len(raw) - keep:] if keep else b""
    return note + tail.decode("utf-8", errors="ignore")


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
              status: str | None = None, days: RunDays | None = None) -> Select[Run]:
    """Query of the visible runs, newest first, filtered (``state=open``: not finished;
    ``days``: assigned/started/finished within day ranges, both ends included).

    The query loads nothing by itself: page its ids, then :func:`load_runs`.
    """
    stmt = select(Run).join(Run.task).where(_visible(identity)).order_by(Run.id.desc())
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
    if days is not None:
        for column, (since, till) in ((Run.assigned_at, days.assigned),
                                      (Run.started_at, days.started),
                                      (Run.finished_at, days.finished)):
            if since is not None:
                stmt = stmt.where(column >= datetime.combine(since, time()))
            if till is not None:
                stmt = stmt.where(column < datetime.combine(till + timedelta(days=1), time()))
    return stmt


DayRange = tuple[date | None, date | None]


@dataclass(frozen=True)
class RunDays:
    """Day ranges (``from``, ``till``; None: open) on a run's assigned/started/finished time."""

    assigned: DayRange = (None, None)
    started: DayRange = (None, None)
    finished: DayRange = (None, None)


@dataclass(frozen=True)
class RunFields:
    """Which large columns a listing sends (the others are not even loaded)."""

    input: bool = False
    result: bool = False
    log: bool = False
    task: bool = False


def stored_size(fields: RunFields) -> Any:
    """The SQL expression of the bytes of the large columns ``fields`` sends, of one run."""
    columns = [c for wanted, c in ((fields.input, Run.input), (fields.result, Run.result),
                                   (fields.log, Run.log)) if wanted]
    size: Any = literal(0)
    for column in columns:
        size = size + func.coalesce(func.length(column), 0)
    return size


def stored_sizes(session: Session, ids: Sequence[int], fields: RunFields) -> dict[int, int]:
    """Bytes of the large columns ``fields`` sends, per run id (as the database counts)."""
    return {row_id: int(total or 0) for row_id, total in
            session.execute(select(Run.id, stored_size(fields)).where(Run.id.in_(ids)))}


def task_sizes(session: Session, task_ids: Sequence[int], fields: RunFields) -> dict[int, int]:
    """Bytes of the large columns ``fields`` sends, summed over each task's runs."""
    size: Any = literal(0)
    for wanted, column in ((fields.input, Run.input), (fields.result, Run.result),
                           (fields.log, Run.log)):
        if wanted:
            size = size + func.coalesce(func.length(column), 0)
    return {task_id: int(total or 0) for task_id, total in session.execute(
        select(Run.task_id, func.sum(size)).where(Run.task_id.in_(task_ids))
        .group_by(Run.task_id))}


def load_tasks(session: Session, ids: Sequence[int], fields: RunFields) -> list[Task]:
    """The tasks of ``ids`` with their runs, loading only the run columns in ``fields``."""
    columns = [undefer(column) if wanted else defer(column) for wanted, column in (
        (fields.input, Run.input), (fields.result, Run.result), (fields.log, Run.log))]
    return list(session.scalars(select(Task).where(Task.id.in_(ids)).options(
        selectinload(Task.runs).options(*columns), selectinload(Task.databases))))


def load_runs(session: Session, ids: Sequence[int], fields: RunFields, *,
              with_task: bool = True, with_ports: bool = True) -> list[Run]:
    """The runs of ``ids`` (with their task unless not ``with_task``; its databases and runs
    only when ``fields.task``), loading only the large columns in ``fields``; their ports
    only when ``with_ports`` (else on first access)."""
    options: list[Any] = [undefer(column) if wanted else defer(column) for wanted, column in (
        (fields.input, Run.input), (fields.result, Run.result), (fields.log, Run.log))]
    if not with_ports:  # no SELECT of the ports of runs whose view does not show them
        options.append(lazyload(Run.ports))
    if with_task:  # many-to-one: in the same query
        task = joinedload(Run.task, innerjoin=True)
        options.append(task)
        if fields.task:  # the task's status is derived from its runs: their status only
            options.append(task.selectinload(Task.databases))
            options.append(task.selectinload(Task.runs).load_only(
                Run.status, Run.started_at, Run.finished_at))
    return list(session.scalars(select(Run).where(Run.id.in_(ids)).options(*options)))


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
               outbox: Outbox, log_limits: LogLimits) -> Run:
    """Apply a node's PATCH: only fields present change; a failure fails unstarted siblings.

    A log longer than ``log_limits.total_bytes`` keeps its tail.

    Raises:
        NotFoundError, UnauthorizedError (not the owning node), BadRequestError (finished).
    """
    run = _owned_run(session, identity, run_id)
    fields = data.model_fields_set
    if run.finished_at is not None:
        if run.status == RunStatus.KILLED.value and "log" in fields:
            # The server finished the run when it was killed; the node's report that
            # follows still brings the container's log, which killed runs keep (v4 lost it).
            run.log = bounded_log(data.log, log_limits)
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
        _set_result(session, identity, run, data.result)
    if "log" in fields:
        run.log = bounded_log(data.log, log_limits)
    _run_update_event(outbox, run)
    if data.status is not None and data.status.is_failed:
        _fail_unstarted_siblings(run, outbox)
    session.flush()
    return run


def _set_result(session: Session, identity: NodeIdentity, run: Run, result: str | None) -> None:
    """Store a result inline, or name the node's uploaded blob when it is a blob UUID.

    Raises:
        BadRequestError: a blob UUID that is not an unused upload of this node.
    """
    if run.result_in_blob:
        blobs.release_field(session=session, run_id=run.id, field="result")
    in_blob = blobs.is_blob_ref(result)
    if in_blob and result is not None:
        blobs.reference(session=session, identity=identity, blob_id=result, run_id=run.id,
                        field="result")
        result = result.lower()
    run.result, run.result_in_blob = result, in_blob


def readable_blob(*, session: Session, identity: Identity, blob_id: str) -> Blob:
    """The blob ``blob_id`` when ``identity`` may read it (rules: ``services.blobs``).

    A result blob is readable under the run VIEW rule (:func:`run_reach`); an input blob by
    users under that rule and by the node that holds the run, never by containers.

    Raises:
        NotFoundError: no such blob, or none a run names (an unused or released upload).
        ForbiddenError: the caller may not see the run, or not its input.
    """
    blob = session.get(Blob, blob_id.lower())
    if blob is None or blob.dead or blob.size is None or blob.run_id is None:
        raise NotFoundError(f"Blob {blob_id} not found")
    run = session.get(Run, blob.run_id)
    if run is None:
        raise NotFoundError(f"Blob {blob_id} not found")
    task = run.task
    reach = run_reach(identity)
    allowed = reach is not None and reach.allows(
        collaboration_id=task.collaboration_id, organization_id=run.organization_id,
        job_id=task.job_id)
    if blob.field == "input" and isinstance(identity, ContainerIdentity):
        allowed = False
    elif blob.field == "input" and isinstance(identity, NodeIdentity):
        allowed = (identity.organization_id == run.organization_id
                   and identity.collaboration_id == task.collaboration_id)
    if not allowed:
        raise ForbiddenError("You lack the permission to read this blob")
    return blob


def _fail_unstarted_siblings(run: Run, outbox: Outbox) -> None:
    now = utcnow()
    for sibling in run.task.runs:
        if sibling.id != run.id and sibling.started_at is None and sibling.finished_at is None:
            sibling.status = RunStatus.FAILED.value
            sibling.finished_at = now
            _run_update_event(outbox, sibling)


def append_log(*, session: Session, identity: NodeIdentity, run_id: int, lines: list[str],
               outbox: Outbox, log_limits: LogLimits) -> Run:
    """Append live log lines of a running algorithm and emit ``algorithm_log``.

    A line longer than ``log_limits.line_bytes`` is cut (and says so); the stored log keeps
    its last ``log_limits.total_bytes``.

    Raises:
        NotFoundError, UnauthorizedError (not the owning node), BadRequestError (finished).
    """
    run = _owned_run(session, identity, run_id)
    if run.finished_at is not None:
        raise BadRequestError(ALREADY_FINISHED)
    if lines:
        limit = max(log_limits.line_bytes - len(CUT_LINE), 0)
        lines = [storable(line) for line in lines]
        lines = [line if len(line.encode("utf-8")) <= log_limits.line_bytes
                 else _cut(line, limit) + CUT_LINE for line in lines]
        run.log = bounded_log((run.log or "") + "".join(f"{line}\n" for line in lines),
                              log_limits)
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


def offline_note(node_name: str, since: datetime | None) -> str:
    """The log line of a run failed because its node stayed away."""
    moment = format_datetime(since) if since is not None else "an unknown time"
    return (f"{LOG_NOTE} node {node_name!r} offline since {moment}: the run was failed "
            "(the node no longer holds an event stream)")


def fail_runs_of_offline_node(*, session: Session, node: Node, cutoff: datetime,
                              outbox: Outbox) -> list[int]:
    """Fail the started runs of ``node`` when it is still offline since before ``cutoff``.

    One conditional UPDATE per kind of run, safe with several server replicas: only runs
    still started (initializing/active, not finished) change, and only while the node's
    ``last_seen`` is still before ``cutoff`` (a node that came back is left alone). The
    runs of those tasks no node started yet fail too, as after a node's own failure report.

    Returns:
        The ids of the runs that were failed now.
    """
    now = utcnow()
    still_away = exists().where(
        Authenticatable.id == node.id,
        or_(Authenticatable.last_seen.is_(None), Authenticatable.last_seen < cutoff))
    of_node = and_(Run.organization_id == node.organization_id, Run.task_id.in_(
        select(Task.id).where(Task.collaboration_id == node.collaboration_id)))
    note = offline_note(node.name, node.last_seen)
    failed = session.execute(
        update(Run).where(of_node, Run.status.in_(STARTED), Run.finished_at.is_(None),
                          still_away)
        .values(status=RunStatus.FAILED.value, finished_at=now,
                log=func.coalesce(Run.log + "\n", "") + note)
        .returning(Run.id, Run.task_id)
        .execution_options(synchronize_session=False)).all()
    if not failed:
        return []
    task_ids = sorted({task_id for _run_id, task_id in failed})
    siblings = session.execute(
        update(Run).where(Run.task_id.in_(task_ids), Run.started_at.is_(None),
                          Run.finished_at.is_(None))
        .values(status=RunStatus.FAILED.value, finished_at=now)
        .returning(Run.id, Run.task_id)
        .execution_options(synchronize_session=False)).all()
    changed = [*failed, *siblings]
    session.expire_all()
    for run in session.scalars(select(Run).where(Run.id.in_([r for r, _t in changed]))
                               .options(defer(Run.input), defer(Run.result), defer(Run.log),
                                        selectinload(Run.task))):
        _run_update_event(outbox, run)
    return [run_id for run_id, _task_id in failed]
