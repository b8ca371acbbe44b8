"""Blobs: who may upload one, which task input or run result may name it, who may read it.

A blob is uploaded first (``POST /blobstream`` answers its UUID) and then named, once, by
the uploader: a task input (``organizations[].input``) by the user or algorithm container
that creates the task, a run result (``PATCH /run``) by the node that owns the run. Naming
is a conditional update, so two requests can never claim one upload. An upload nobody names
within ``blobs.unreferenced_ttl_seconds`` is deleted by the janitor
(:mod:`v6flow_server.blobs.janitor`), as are the blobs of deleted runs.

Who may read a blob (``GET /blobstream/<uuid>``) follows the run that names it
(:func:`v6flow_server.services.runs.readable_blob`):

- a result blob: whoever may see the run (:func:`v6flow_server.services.runs.run_reach`, the run
  VIEW rule; an algorithm container: the runs of its own job), exactly who reads an inline
  result through ``GET /result``;
- an input blob: the node that holds the run, and users who may see the run (as they read an
  inline input through ``GET /run/<id>``). Other nodes and algorithm containers may not: a
  run's input is for the organization that runs it (v4 let any node of the collaboration
  read it).

Uploading needs: a user with a task CREATE rule (v4's rule), a node, or an algorithm
container whose task is not finished (v4's rule).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from v6flow.schemas import is_blob_ref as is_blob_ref  # re-exported for the services
from v6flow.wire import utcnow
from v6flow_server.auth.permissions import Operation, Resource
from v6flow_server.auth.principals import ContainerIdentity, Identity, NodeIdentity, UserIdentity
from v6flow_server.db.models import Blob, Run, Task
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.services.task_state import task_is_finished

#: ``session.info`` key set when blobs were released: the janitor deletes them after commit.
RELEASED = "v6flow.blobs_released"
Field = Literal["input", "result"]


def uploader_of(identity: Identity) -> str:
    """The uploader key of ``identity``: only the same caller may name its upload."""
    if isinstance(identity, UserIdentity):
        return f"user:{identity.user_id}"
    if isinstance(identity, ContainerIdentity):
        return f"task:{identity.task_id}:node:{identity.node_id}"
    if isinstance(identity, NodeIdentity):
        return f"node:{identity.node_id}"
    raise ForbiddenError("Only users, nodes and algorithm containers may upload blobs")


def begin_upload(*, session: Session, identity: Identity) -> str:
    """Check that ``identity`` may upload and record a new, still empty blob.

    Returns:
        The new blob's UUID (the key it is stored under).

    Raises:
        ForbiddenError: a user without a task CREATE rule, or a container of a finished task.
    """
    if isinstance(identity, UserIdentity) and \
            identity.scope(Resource.TASK, Operation.CREATE) is None:
        raise ForbiddenError("Uploading a blob needs the permission to create tasks")
    if isinstance(identity, ContainerIdentity):
        task = session.get(Task, identity.task_id)
        if task is None or task_is_finished(task):
            raise ForbiddenError("Cannot upload a blob for a sub-task of a finished task")
    blob = Blob(id=str(uuid.uuid4()), uploader=uploader_of(identity), created_at=utcnow())
    session.add(blob)
    session.flush()
    return blob.id


def finish_upload(*, session: Session, blob_id: str, size: int) -> bool:
    """Record the size of a completely stored upload; False when the janitor took it meanwhile."""
    done = session.execute(update(Blob).where(
        Blob.id == blob_id, Blob.size.is_(None), Blob.dead.is_(False)).values(size=size))
    return _count(done) == 1


def abort_upload(*, session: Session, blob_id: str) -> None:
    """Mark an upload that failed dead (the janitor deletes what was stored of it)."""
    session.execute(update(Blob).where(Blob.id == blob_id).values(dead=True))
    session.info[RELEASED] = True


def reference(*, session: Session, identity: Identity, blob_id: str, run_id: int,
              field: Field) -> None:
    """Let the ``field`` of run ``run_id`` name the blob ``blob_id``.

    Raises:
        BadRequestError: the blob is unknown, still uploading, already named, released, or
            another caller's upload (or this server keeps no blob store).
    """
    claimed = session.execute(update(Blob).where(
        Blob.id == blob_id.lower(), Blob.uploader == uploader_of(identity),
        Blob.run_id.is_(None), Blob.size.is_not(None), Blob.dead.is_(False),
    ).values(run_id=run_id, field=field).execution_options(synchronize_session=False))
    if _count(claimed) != 1:
        raise BadRequestError(
            f"The {field} names blob {blob_id}, which is not a finished, unused upload of "
            "yours (upload it with POST /blobstream first; each upload may be named once)")


def release_runs(*, session: Session, run_ids: Iterable[int]) -> int:
    """Release the blobs the runs ``run_ids`` name (before the runs are deleted).

    They are deleted from the store after the commit (see :data:`RELEASED`).

    Returns:
        How many blobs were released.
    """
    ids = list(run_ids)
    if not ids:
        return 0
    released = _count(session.execute(
        update(Blob).where(Blob.run_id.in_(ids)).values(dead=True, run_id=None)
        .execution_options(synchronize_session=False)))
    if released:
        session.info[RELEASED] = True
    return released


def release_tasks(*, session: Session, task_ids: Iterable[int]) -> int:
    """Release the blobs of every run of the tasks ``task_ids`` (before they are deleted)."""
    ids = list(task_ids)
    if not ids:
        return 0
    return release_runs(session=session, run_ids=session.scalars(
        select(Run.id).where(Run.task_id.in_(ids))))


def release_field(*, session: Session, run_id: int, field: Field) -> None:
    """Release the blob the ``field`` of one run names (it is being replaced)."""
    released = _count(session.execute(
        update(Blob).where(Blob.run_id == run_id, Blob.field == field)
        .values(dead=True, run_id=None).execution_options(synchronize_session=False)))
    if released:
        session.info[RELEASED] = True


def expire_unreferenced(*, session: Session, before: datetime) -> int:
    """Release uploads created before ``before`` that no run names; how many."""
    expired = _count(session.execute(
        update(Blob).where(Blob.run_id.is_(None), Blob.dead.is_(False),
                           Blob.created_at < before).values(dead=True)
        .execution_options(synchronize_session=False)))
    return expired


def released_blobs(*, session: Session, limit: int) -> list[str]:
    """Up to ``limit`` released blobs whose bytes are to be deleted."""
    return list(session.scalars(select(Blob.id).where(Blob.dead.is_(True))
                                .order_by(Blob.created_at).limit(limit)))


def forget(*, session: Session, blob_ids: Iterable[str]) -> None:
    """Delete the rows of released blobs whose bytes are gone."""
    ids = list(blob_ids)
    if ids:
        session.execute(delete(Blob).where(Blob.id.in_(ids), Blob.dead.is_(True))
                        .execution_options(synchronize_session=False))


def _count(result: object) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0
