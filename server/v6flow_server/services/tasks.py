"""Tasks: creation with the v4 rules (CONTRACT §6), visibility, listing and deletion."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session, selectinload

from v6flow.crypto import Scheme, check_envelope, scheme_of
from v6flow.errors import DecryptionError, DeserializationError
from v6flow.schemas import TaskCreate
from v6flow.status import RunStatus
from v6flow.wire import b64decode_str, json_from_bytes, utcnow
from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import ContainerIdentity, Identity, UserIdentity
from v6flow_server.db.models import (
    Collaboration,
    Node,
    Run,
    Study,
    Task,
    TaskDatabase,
    member_table,
)
from v6flow_server.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)
from v6flow_server.events import EventName, Outbox
from v6flow_server.services import audit, blobs
from v6flow_server.services.audit import AuditEvent
from v6flow_server.services.common import get_or_404
from v6flow_server.services.reach import Reach, job_reach, narrowest, scope_reach
from v6flow_server.services.runs import kill_runs
from v6flow_server.services.task_state import task_is_finished, task_status
from v6flow_server.services.visibility import NO_PERMISSION

CONTAINER_TOKEN_INVALID = "Container-token is not valid"  # noqa: S105 - a message


def task_reach(identity: Identity, *, cap: Scope = Scope.GLOBAL) -> Reach | None:
    """What ``identity`` may see of tasks (None: nothing), at most as far as ``cap``.

    The one task visibility rule: REST reads use it through :func:`_visible`, the event
    stream (``new_task``) through :meth:`Reach.allows` on ``collaboration_id``,
    ``init_org_id`` and ``job_id``. A task's organization is its initiator's
    (``init_org_id``); an algorithm container sees its own job only.
    """
    if isinstance(identity, ContainerIdentity):
        return job_reach(identity)
    return scope_reach(identity, narrowest(identity.scope(Resource.TASK, Operation.VIEW), cap))


def _visible(identity: Identity) -> ColumnElement[bool]:
    reach = task_reach(identity)
    if reach is None:
        raise ForbiddenError(NO_PERMISSION)
    return reach.condition(collaboration_id=Task.collaboration_id,
                           organization_id=Task.init_org_id, job_id=Task.job_id)


@dataclass(frozen=True)
class _Collab:
    """What task creation needs of its collaboration."""

    id: int
    encrypted: bool


def _collaboration_query() -> Any:
    """A collaboration's ``encrypted`` with each member and its node in the collaboration (if
    any); no row: no such collaboration (``:collaboration``: its id)."""
    collaborations, nodes = Collaboration.__table__, Node.__table__
    return (select(collaborations.c.encrypted, member_table.c.organization_id, nodes.c.id)
            .select_from(collaborations.outerjoin(
                member_table, member_table.c.collaboration_id == collaborations.c.id).outerjoin(
                nodes, and_(nodes.c.organization_id == member_table.c.organization_id,
                            nodes.c.collaboration_id == member_table.c.collaboration_id)))
            .where(collaborations.c.id == bindparam("collaboration", type_=Integer)))


#: Built once: SQLAlchemy then finds its compiled form without re-deriving its cache key.
_COLLABORATION_QUERY = _collaboration_query()


def _collaboration(session: Session,
                   data: TaskCreate) -> tuple[_Collab, Study | None, dict[int, bool]]:
    """The task's collaboration, its study when one is named (v4: either or both), and its
    members (:func:`_members`)."""
    if data.study_id is not None:
        study = get_or_404(session, Study, data.study_id, "Study")
        if data.collaboration_id is not None and data.collaboration_id != study.collaboration_id:
            raise BadRequestError(f"Study id={study.id} does not belong to collaboration "
                                  f"id={data.collaboration_id}")
        collab = _Collab(study.collaboration.id, bool(study.collaboration.encrypted))
        return collab, study, _members(session, collab.id)
    if data.collaboration_id is None:
        raise BadRequestError("collaboration_id or study_id is required")
    # The collaboration with its members in one query (the hot path: POST /task).
    rows = session.execute(_COLLABORATION_QUERY, {"collaboration": data.collaboration_id}).all()
    if not rows:
        raise NotFoundError(f"Collaboration id={data.collaboration_id} not found")
    members = {org: node is not None for _, org, node in rows if org is not None}
    return _Collab(data.collaboration_id, bool(rows[0][0])), None, members


def _check_study(study: Study | None, org_ids: list[int]) -> None:
    if study is None:
        return
    members = {o.id for o in study.organizations}
    outside = [oid for oid in org_ids if oid not in members]
    if outside:
        raise BadRequestError(f"Organization(s) {outside} are not part of study id={study.id}")


def _members(session: Session, collaboration_id: int) -> dict[int, bool]:
    """The organizations of the collaboration, each with whether it has a node in it (one
    query)."""
    nodes = Node.__table__
    return {org: node is not None for org, node in session.execute(
        select(member_table.c.organization_id, nodes.c.id)
        .select_from(member_table.outerjoin(nodes, and_(
            nodes.c.organization_id == member_table.c.organization_id,
            nodes.c.collaboration_id == member_table.c.collaboration_id)))
        .where(member_table.c.collaboration_id == collaboration_id))}


def _check_targets(collab: _Collab, members: dict[int, bool],
                   data: TaskCreate) -> list[int]:
    org_ids = [o.id for o in data.organizations]
    if len(set(org_ids)) != len(org_ids):
        raise BadRequestError("organizations lists an organization more than once")
    outside = [oid for oid in org_ids if oid not in members]
    if outside:
        raise BadRequestError(
            f"Organization(s) {outside} are not part of collaboration id={collab.id}")
    missing = [oid for oid in org_ids if not members[oid]]
    if missing:
        raise BadRequestError(
            f"Cannot create this task because there are no nodes registered for "
            f"organization(s) {missing} in collaboration id={collab.id}")
    return org_ids


def _check_inputs(data: TaskCreate, collab: _Collab) -> None:
    """What the server can check without keys (CONTRACT §5): an encrypted collaboration
    takes only encrypted inputs of a well-formed envelope (v4 or v6flow-aead-1), an
    unencrypted one only base64 JSON."""
    for target in data.organizations:
        if blobs.is_blob_ref(target.input):
            continue  # named blob: its bytes are the creator's business (checked when named)
        if collab.encrypted:
            _check_encrypted_input(target.id, target.input, collab.id)
            continue
        if scheme_of(target.input) is not Scheme.PLAIN:
            raise BadRequestError(
                f"Input for organization id={target.id} is encrypted, but collaboration "
                f"id={collab.id} is not encrypted: send base64 encoded JSON")
        try:
            json_from_bytes(b64decode_str(target.input))
        except DeserializationError as exc:
            raise BadRequestError(
                f"Input for organization id={target.id} should be a base64 encoded JSON "
                f"string (the collaboration is not encrypted): {exc}") from exc


def _check_encrypted_input(org_id: int, text: str, collaboration_id: int) -> None:
    try:
        scheme = check_envelope(text)
    except DecryptionError as exc:
        raise BadRequestError(
            f"Input for organization id={org_id} is not a well-formed encrypted payload: "
            f"{exc}") from exc
    if scheme is Scheme.PLAIN:
        raise BadRequestError(
            f"Collaboration id={collaboration_id} requires encryption: the input for "
            f"organization id={org_id} is not encrypted (set up encryption in the client "
            "with the organization's private key)")


@dataclass(frozen=True)
class _Origin:
    init_org_id: int
    init_user_id: int | None
    parent: Task | None
    image: str
    store_id: int | None


def _origin(session: Session, identity: Identity, collab: _Collab,
            members: dict[int, bool], data: TaskCreate) -> _Origin:
    if isinstance(identity, ContainerIdentity):
        parent = session.get(Task, identity.task_id)
        valid = (parent is not None and identity.collaboration_id == collab.id
                 and data.image.endswith(identity.image) and not task_is_finished(parent))
        if not valid or parent is None:
            raise UnauthorizedError(CONTAINER_TOKEN_INVALID)
        if data.study_id is not None and data.study_id != parent.study_id:
            raise UnauthorizedError(CONTAINER_TOKEN_INVALID)  # a subtask stays in its study
        return _Origin(identity.organization_id, parent.init_user_id, parent, parent.image,
                       parent.algorithm_store_id)
    if not isinstance(identity, UserIdentity):
        raise ForbiddenError("Only users and algorithm containers can create tasks")
    if identity.organization_id not in members:
        raise UnauthorizedError(
            f"Your organization is not part of collaboration id={collab.id}")
    needed = Scope.COLLABORATION if collab.id in identity.collaboration_ids else Scope.GLOBAL
    if not identity.can(Resource.TASK, Operation.CREATE, needed):
        raise UnauthorizedError("You lack the permission to create tasks in this collaboration")
    return _Origin(identity.organization_id, identity.user_id, None, data.image, data.store_id)


def _check_job_size(session: Session, job_id: int, limit: int) -> None:
    """Refuse a subtask of a job that already holds ``limit`` tasks (runaway algorithms)."""
    held = session.scalar(select(func.count()).select_from(Task).where(Task.job_id == job_id))
    if (held or 0) >= limit:
        raise BadRequestError(
            f"Job {job_id} already holds {held} tasks, the most this server allows in one job "
            f"(max_tasks_per_job); an algorithm that creates subtasks without end is stopped "
            f"here")


#: The tables themselves: Core inserts, without the ORM's bulk-insert machinery.
_TASKS = cast(Table, Task.__table__)
_RUNS = cast(Table, Run.__table__)


#: Statements of :func:`create_task`, built once (SQLAlchemy then finds their compiled form
#: without re-deriving its cache key).
_INSERT_TASK = insert(_TASKS).returning(_TASKS.c.id)
_JOB_NUMBER = bindparam("number", type_=Integer)
_NUMBER_JOB = update(_TASKS).where(_TASKS.c.id == _JOB_NUMBER).values(job_id=_JOB_NUMBER)
_INSERT_RUNS = insert(_RUNS).returning(_RUNS.c.id, sort_by_parameter_order=True)

#: The columns of a new task (besides ``id`` and ``job_id``) and of a new run (besides
#: ``task_id``) that :func:`create_task` sets.
_TASK_COLUMNS = ("name", "description", "image", "collaboration_id", "study_id", "parent_id",
                 "init_org_id", "init_user_id", "algorithm_store_id", "created_at",
                 "flow_run_id")
_RUN_COLUMNS = ("organization_id", "status", "assigned_at", "input", "blob_storage_used",
                "result_in_blob")
#: Statements of :func:`_insert_job_pg` are kept for up to this many runs (SQLAlchemy then
#: finds their compiled form without re-deriving its cache key).
_KEPT_JOB_INSERTS = 16


@functools.cache
def _job_insert(runs: int) -> Any:
    """The statement of :func:`_insert_job_pg` for ``runs`` runs (parameters ``t_<column>``
    for the task, ``r<i>_<column>`` for run ``i``)."""
    number = select(func.nextval(func.pg_get_serial_sequence(_TASKS.name, "id"))
                    .label("id")).cte("number")
    stored = insert(_TASKS).from_select(
        ["id", "job_id", *_TASK_COLUMNS],
        select(number.c.id, number.c.id,
               *(bindparam(f"t_{name}", type_=_TASKS.c[name].type) for name in _TASK_COLUMNS)),
    ).returning(_TASKS.c.id).cte("stored")
    selects = [select(stored.c.id, *(bindparam(f"r{index}_{name}", type_=_RUNS.c[name].type)
                                     for name in _RUN_COLUMNS)) for index in range(runs)]
    targets = selects[0] if runs == 1 else union_all(*selects)
    return (insert(_RUNS).from_select(["task_id", *_RUN_COLUMNS], targets)
            .returning(_RUNS.c.id, _RUNS.c.task_id, _RUNS.c.organization_id))


def _insert_job_pg(session: Session, values: dict[str, Any],
                   rows: list[dict[str, Any]]) -> tuple[int, list[int]]:
    """PostgreSQL: the first task of a new job and its runs in one statement.

    The task's id is drawn from its sequence first, so that the job is numbered by it in the
    same INSERT (no UPDATE of ``job_id`` afterwards); the runs are inserted from the stored
    task. Sets ``values["job_id"]`` and each row's ``task_id``; returns the task's id and
    the runs' ids in the order of ``rows`` (one run per organization).
    """
    statement = (_job_insert(len(rows)) if len(rows) <= _KEPT_JOB_INSERTS
                 else _job_insert.__wrapped__(len(rows)))
    params = {f"t_{name}": values[name] for name in _TASK_COLUMNS}
    for index, row in enumerate(rows):
        params.update({f"r{index}_{name}": row[name] for name in _RUN_COLUMNS})
    result = session.execute(statement, params)
    by_organization = {org: (run_id, task_id) for run_id, task_id, org in result}
    task_id = next(iter(by_organization.values()))[1]
    values["job_id"] = task_id
    for row in rows:
        row["task_id"] = task_id
    return task_id, [by_organization[row["organization_id"]][0] for row in rows]


def create_task(*, session: Session, identity: Identity, data: TaskCreate,
                outbox: Outbox, max_job_tasks: int | None = None) -> Task:
    """Validate, authorize and store a task with one pending run per organization.

    Raises:
        NotFoundError: collaboration (or study) unknown.
        BadRequestError: target organization outside the collaboration (or the study) or
            without a node, a study of another collaboration, or an input that is not
            what the collaboration takes (encrypted or base64 JSON; :func:`_check_inputs`),
            or a subtask of a job that holds ``max_job_tasks`` tasks already.
        UnauthorizedError: no permission, or an invalid container token (v4 answers 401).
    """
    collab, study, members = _collaboration(session, data)
    origin = _origin(session, identity, collab, members, data)
    if origin.parent is not None and origin.parent.study_id is not None:
        study = session.get(Study, origin.parent.study_id)  # a subtask inherits the study
    if origin.parent is not None and max_job_tasks is not None:
        _check_job_size(session, origin.parent.job_id, max_job_tasks)
    org_ids = _check_targets(collab, members, data)
    _check_study(study, org_ids)
    _check_inputs(data, collab)
    now = utcnow()
    values = {
        "name": data.name, "description": data.description, "image": origin.image,
        "collaboration_id": collab.id, "study_id": study.id if study is not None else None,
        "job_id": origin.parent.job_id if origin.parent is not None else 0,
        "parent_id": origin.parent.id if origin.parent else None,
        "init_org_id": origin.init_org_id, "init_user_id": origin.init_user_id,
        "algorithm_store_id": origin.store_id, "created_at": now,
        "flow_run_id": data.flow_run_id,
    }
    inputs = {o.id: o.input for o in data.organizations}
    in_blob = {oid: blobs.is_blob_ref(inputs[oid]) for oid in org_ids}
    rows = [{"organization_id": oid, "status": RunStatus.PENDING.value,
             "assigned_at": now, "input": inputs[oid].lower() if in_blob[oid] else inputs[oid],
             "blob_storage_used": in_blob[oid], "result_in_blob": False} for oid in org_ids]
    # Core inserts on the tables (no unit of work, no ORM bulk insert): this is the hottest
    # write of the server.
    if origin.parent is None and session.get_bind().dialect.name == "postgresql":
        task_id, run_ids = _insert_job_pg(session, values, rows)
    else:
        task_id = session.execute(_INSERT_TASK, values).scalar_one()
        if origin.parent is None:
            # A new job is numbered by its first task's id: unique without a race between
            # concurrent requests (v4's max(job_id)+1 can hand out one number twice).
            values["job_id"] = task_id
            session.execute(_NUMBER_JOB, {"number": task_id})
        for row in rows:
            row["task_id"] = task_id
        run_ids = list(session.scalars(_INSERT_RUNS, rows))
    databases = [{"task_id": task_id, "database": db.label, "parameters": json.dumps(
        db.model_dump(exclude_none=True, exclude={"label"}), separators=(",", ":"))}
        for db in data.databases]
    if databases:
        session.execute(insert(cast(Table, TaskDatabase.__table__)), databases)
    for run_id, row in zip(run_ids, rows, strict=True):
        if row["blob_storage_used"]:
            blobs.reference(session=session, identity=identity, blob_id=str(row["input"]),
                            run_id=run_id, field="input")
    outbox.emit(EventName.NEW_TASK, collaboration_id=collab.id, id=task_id,
                parent_id=values["parent_id"], job_id=values["job_id"],
                init_org_id=origin.init_org_id)
    # What the answer is built from: the stored values, not read back (not in the session).
    task = Task(id=task_id, **values)
    task.databases = [TaskDatabase(id=None, **db) for db in databases]
    task.runs = [Run(id=run_id, **row) for run_id, row in zip(run_ids, rows, strict=True)]
    return task


def list_tasks(*, identity: Identity, init_org_id: int | None = None,
               init_user_id: int | None = None, collaboration_id: int | None = None,
               image: str | None = None, parent_id: int | None = None, job_id: int | None = None,
               name: str | None = None, description: str | None = None,
               database: str | None = None, run_id: int | None = None,
               store_id: int | None = None, is_user_created: bool | None = None,
               study_id: int | None = None) -> Select[Task]:
    """Query of the visible tasks, filtered (status is filtered afterwards: it is derived)."""
    stmt = (select(Task).where(_visible(identity)).order_by(Task.id)
            .options(selectinload(Task.runs), selectinload(Task.databases)))
    equal = {Task.init_org_id: init_org_id, Task.init_user_id: init_user_id,
             Task.collaboration_id: collaboration_id, Task.parent_id: parent_id,
             Task.job_id: job_id, Task.algorithm_store_id: store_id, Task.study_id: study_id}
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if image is not None:
        stmt = stmt.where(Task.image.like(image))
    if name is not None:
        stmt = stmt.where(Task.name.like(name))
    if description is not None:
        stmt = stmt.where(Task.description.like(description))
    if database is not None:
        stmt = stmt.where(Task.databases.any(TaskDatabase.database == database))
    if run_id is not None:
        stmt = stmt.where(Task.runs.any(Run.id == run_id))
    if is_user_created is not None:
        stmt = stmt.where(Task.parent_id.is_(None) if is_user_created
                          else Task.parent_id.is_not(None))
    return stmt


def with_status(tasks: list[Task], status: str) -> list[Task]:
    """Keep the tasks whose derived status is ``status``."""
    return [task for task in tasks if task_status(task).value == status]


def get_task(*, session: Session, identity: Identity, task_id: int) -> Task:
    """One visible task.

    Raises:
        NotFoundError, ForbiddenError.
    """
    task = get_or_404(session, Task, task_id, "Task")
    if session.scalar(select(Task.id).where(Task.id == task.id, _visible(identity))) is None:
        raise ForbiddenError(NO_PERMISSION)
    return task


def _descendants(session: Session, task: Task) -> list[Task]:
    """``task`` and every task below it, deepest first."""
    order: list[Task] = []
    frontier = [task]
    while frontier:
        order.extend(frontier)
        ids = [t.id for t in frontier]
        frontier = list(session.scalars(select(Task).where(Task.parent_id.in_(ids))))
    return list(reversed(order))


def delete_task(*, session: Session, identity: Identity, task_id: int, outbox: Outbox) -> None:
    """Delete a task, its runs and its subtasks; unfinished runs are killed first.

    Raises:
        NotFoundError, ForbiddenError.
    """
    task = get_or_404(session, Task, task_id, "Task")
    scope = identity.scope(Resource.TASK, Operation.DELETE)
    allowed = scope is Scope.GLOBAL or (
        scope is Scope.COLLABORATION and task.collaboration_id in identity.collaboration_ids
    ) or (scope is not None and task.init_org_id == identity.organization_id)
    if not allowed:
        raise ForbiddenError(NO_PERMISSION)
    deleted = delete_tasks(session=session, tasks=[task], outbox=outbox)
    audit.record(session, event=AuditEvent.TASK_DELETED, actor=identity, target=("task", task.id),
                 task_ids=deleted)


def delete_tasks(*, session: Session, tasks: Iterable[Task], outbox: Outbox) -> list[int]:
    """Delete tasks with their runs and every subtask below them; unfinished runs are killed
    first (the nodes are told). Also used when a collaboration, organization or study is
    deleted with its dependents.

    Returns:
        The ids of the deleted tasks (subtasks included).
    """
    deleted: dict[int, None] = {}
    for task in tasks:
        if task.id in deleted:
            continue
        family = [t for t in _descendants(session, task) if t.id not in deleted]
        kill_runs(tasks=family, outbox=outbox)
        blobs.release_tasks(session=session, task_ids=[t.id for t in family])
        for member in family:
            deleted[member.id] = None
            session.delete(member)
            session.flush()
    return list(deleted)
