"""Deleting an organization, a collaboration or a study, with or without its dependents.

One pattern for the three (v4's): count the dependents; when there are any and
``delete_dependents`` is not set, refuse with a 400 that names each kind and its number;
otherwise delete them first, then the object. Tasks go with their runs and subtasks, and their
unfinished runs are killed first (the nodes are told after the commit), and the blobs of their
inputs and results are released (deleted from the blob store after the commit). Nodes go with
their API key, so they are revoked at once.

- Organization (organization DELETE, global only, never the caller's own): its users, nodes,
  organization roles, the tasks it started, the runs at it in other organizations' tasks, and
  its collaboration and study memberships (the collaborations and studies themselves stay).
  Tasks of other organizations that one of its users started (subtasks of its jobs) lose
  their ``init_user`` instead of being deleted.
- Collaboration (collaboration DELETE, global or collaboration scope): its tasks, nodes and
  studies; the organizations stay.
- Study (study DELETE, global, collaboration or organization scope): its tasks.

This module sits apart from the per-resource services because it needs them all (tasks,
nodes, studies); nothing imports it but the routes, so no import cycle can form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from v6flow_server.auth.permissions import Operation, Resource, Scope
from v6flow_server.auth.principals import Identity
from v6flow_server.db.models import Collaboration, Node, Organization, Role, Run, Study, Task, User
from v6flow_server.errors import BadRequestError, ForbiddenError
from v6flow_server.events import Outbox
from v6flow_server.services import audit
from v6flow_server.services.audit import AuditEvent
from v6flow_server.services.blobs import release_runs
from v6flow_server.services.common import get_or_404
from v6flow_server.services.nodes import delete_node_rows
from v6flow_server.services.runs import kill_runs
from v6flow_server.services.scope import reaches
from v6flow_server.services.studies import reaches_study
from v6flow_server.services.tasks import delete_tasks
from v6flow_server.services.visibility import NO_PERMISSION

_PLURALS = {"study": "studies"}


def _count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _refuse_unless(delete_dependents: bool, what: str, counts: Mapping[str, int]) -> None:
    """Raise the 400 naming every dependent kind (``counts`` by singular name) unless allowed.

    Raises:
        BadRequestError: dependents exist and ``delete_dependents`` is false.
    """
    named = ", ".join(f"{n} {_PLURALS.get(label, label + 's') if n != 1 else label}"
                      for label, n in counts.items() if n)
    if named and not delete_dependents:
        raise BadRequestError(
            f"{what} has dependents: {named}. Delete them first or set delete_dependents=true")


def delete_organization(*, session: Session, identity: Identity, organization_id: int,
                        delete_dependents: bool, outbox: Outbox) -> None:
    """Delete an organization (see the module doc for what goes with it).

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (the caller's own organization, or
        dependents without ``delete_dependents``).
    """
    org = get_or_404(session, Organization, organization_id, "Organization")
    if not identity.can(Resource.ORGANIZATION, Operation.DELETE, Scope.GLOBAL):
        raise ForbiddenError(NO_PERMISSION)
    audit.record(session, event=AuditEvent.ORGANIZATION_DELETED, actor=identity,
                 target=("organization", org.id))
    if org.id == identity.organization_id:
        raise BadRequestError("You cannot delete your own organization!")
    users = select(User.id).where(User.organization_id == org.id)
    nodes = select(Node.id).where(Node.organization_id == org.id)
    roles = select(Role.id).where(Role.organization_id == org.id)
    tasks = select(Task.id).where(Task.init_org_id == org.id)
    runs = select(Run.id).where(Run.organization_id == org.id)
    _refuse_unless(delete_dependents, f"Organization id={org.id}", {
        "user": _count(session, users), "node": _count(session, nodes),
        "role": _count(session, roles), "task": _count(session, tasks),
        "run": _count(session, runs),
        "collaboration membership": len(org.collaborations),
        "study membership": len(org.studies),
    })
    delete_tasks(session=session, outbox=outbox, tasks=session.scalars(
        select(Task).where(Task.init_org_id == org.id).order_by(Task.id)).all())
    elsewhere = session.scalars(select(Task).where(
        Task.runs.any(Run.organization_id == org.id)).order_by(Task.id)).all()
    kill_runs(tasks=elsewhere, outbox=outbox, organization_id=org.id)
    release_runs(session=session, run_ids=session.scalars(select(Run.id).where(
        Run.organization_id == org.id)))  # their blobs go after the commit
    for task in elsewhere:
        for run in [r for r in task.runs if r.organization_id == org.id]:
            task.runs.remove(run)  # delete-orphan: the row goes
    session.execute(update(Task).where(Task.init_user_id.in_(users)).values(init_user_id=None))
    delete_node_rows(session, session.scalars(select(Node).where(Node.id.in_(nodes))).all())
    for model, ids in ((User, users), (Role, roles)):
        for row in session.scalars(select(model).where(model.id.in_(ids))).all():
            session.delete(row)
    session.flush()
    session.delete(org)
    session.flush()


def delete_collaboration(*, session: Session, identity: Identity, collaboration_id: int,
                         delete_dependents: bool, outbox: Outbox) -> None:
    """Delete a collaboration; with ``delete_dependents`` also its tasks, nodes and studies.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (dependents, named).
    """
    collab = get_or_404(session, Collaboration, collaboration_id, "Collaboration")
    if not reaches(identity, Resource.COLLABORATION, Operation.DELETE,
                   collaboration_ids=[collab.id]):
        raise ForbiddenError(NO_PERMISSION)
    audit.record(session, event=AuditEvent.COLLABORATION_DELETED, actor=identity,
                 target=("collaboration", collab.id))
    tasks = select(Task).where(Task.collaboration_id == collab.id).order_by(Task.id)
    nodes = select(Node).where(Node.collaboration_id == collab.id)
    _refuse_unless(delete_dependents, f"Collaboration id={collab.id}", {
        "task": _count(session, select(Task.id).where(Task.collaboration_id == collab.id)),
        "node": _count(session, select(Node.id).where(Node.collaboration_id == collab.id)),
        "study": len(collab.studies),
    })
    delete_tasks(session=session, tasks=session.scalars(tasks).all(), outbox=outbox)
    delete_node_rows(session, session.scalars(nodes).all())
    for study in list(collab.studies):
        session.delete(study)
    session.flush()
    session.delete(collab)
    session.flush()


def delete_study(*, session: Session, identity: Identity, study_id: int,
                 delete_dependents: bool, outbox: Outbox) -> None:
    """Delete a study; with ``delete_dependents`` its tasks too.

    Raises:
        NotFoundError, ForbiddenError, BadRequestError (it has tasks, named).
    """
    study = get_or_404(session, Study, study_id, "Study")
    if not reaches_study(identity, Operation.DELETE, study):
        raise ForbiddenError(NO_PERMISSION)
    tasks = session.scalars(select(Task).where(Task.study_id == study.id)
                            .order_by(Task.id)).all()
    _refuse_unless(delete_dependents, f"Study id={study.id}", {"task": len(tasks)})
    delete_tasks(session=session, tasks=tasks, outbox=outbox)
    session.delete(study)
    session.flush()
