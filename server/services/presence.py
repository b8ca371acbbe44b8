"""Node presence shared by server replicas, and the sweep that fails runs of absent nodes.

A node is online while it holds an event stream on some replica. Each replica refreshes
``last_seen`` (and ``status``) of the nodes streaming to it every
``presence_interval_seconds``; a node whose ``last_seen`` is older than
``node_offline_fail_seconds`` is offline for that long, whichever replica it used, and its
started runs fail (:func:`server.services.runs.fail_runs_of_offline_node`). Every write is a
conditional UPDATE, so replicas running the same sweep at once do each change only once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from server.db.models import Authenticatable, Node, Run, Task
from server.events import Outbox
from server.services.nodes import OFFLINE, ONLINE, node_status_event
from server.services.runs import STARTED, fail_runs_of_offline_node
from v6flow.wire import utcnow


def refresh_connected(*, session: Session, node_ids: Collection[int],
                      now: datetime | None = None) -> None:
    """Mark the nodes streaming to this replica online, seen now."""
    if node_ids:
        session.execute(update(Authenticatable)
                        .where(Authenticatable.id.in_(sorted(node_ids)))
                        .values(status=ONLINE, last_seen=now or utcnow())
                        .execution_options(synchronize_session=False))


def mark_all_offline(*, session: Session, now: datetime | None = None) -> None:
    """At start: nobody streams to a process that is just starting.

    ``last_seen`` becomes now, so the nodes get a full offline period to reconnect before
    their runs fail, however long the server itself was down.
    """
    session.execute(update(Authenticatable)
                    .where(Authenticatable.type == "node", Authenticatable.status == ONLINE)
                    .values(status=OFFLINE, last_seen=now or utcnow())
                    .execution_options(synchronize_session=False))


def sweep_offline_nodes(*, session: Session, connected: Collection[int], offline_after: float,
                        outbox: Outbox, now: datetime | None = None) -> list[int]:
    """Fail the started runs of nodes not seen for ``offline_after`` seconds.

    Nodes still marked online whose replica stopped refreshing them are marked offline (and
    ``node_status`` tells who may see them).

    Returns:
        The ids of the runs failed now.
    """
    cutoff = (now or utcnow()) - timedelta(seconds=offline_after)
    away = or_(Authenticatable.last_seen.is_(None), Authenticatable.last_seen < cutoff)
    gone = session.scalars(update(Authenticatable)
                           .where(Authenticatable.type == "node",
                                  Authenticatable.status == ONLINE,
                                  Authenticatable.last_seen < cutoff)
                           .values(status=OFFLINE)
                           .returning(Authenticatable.id)
                           .execution_options(synchronize_session=False)).all()
    for node in session.scalars(select(Node).where(Node.id.in_(gone))).all():
        node_status_event(outbox, node)
    with_started_runs = select(Run.id).join(Run.task).where(
        Run.organization_id == Node.organization_id,
        Task.collaboration_id == Node.collaboration_id,
        Run.status.in_(STARTED), Run.finished_at.is_(None)).exists()
    stale = session.scalars(select(Node).where(
        and_(away, with_started_runs, Node.id.not_in(sorted(connected) or [0]))))
    failed: list[int] = []
    for node in stale.all():
        failed += fail_runs_of_offline_node(session=session, node=node, cutoff=cutoff,
                                            outbox=outbox)
    return failed
