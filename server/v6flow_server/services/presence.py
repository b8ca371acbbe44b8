"""Node presence shared by server replicas, and the sweep that fails runs of absent nodes.

A node is online while it holds an event stream on some replica. Each open stream is a row
of ``node_stream`` naming its replica; the replica refreshes ``seen_at`` of its rows (and
``last_seen`` of their nodes) every ``presence_interval_seconds`` (:func:`heartbeat`). A row
not refreshed for :func:`stream_timeout` (three intervals) belongs to a replica that died:
any replica's :func:`sweep` deletes it. ``authenticatable.status`` follows the rows: a node
gets ``online`` when its first live row appears and ``offline`` when its last one goes, and
each change is announced once (``node_status``), whichever replica makes it, because every
status write is a conditional UPDATE that only one transaction can win.

A replica that starts marks nothing offline: its id is new, so it owns no rows, and the
nodes other replicas serve keep theirs.

A node whose ``last_seen`` is older than ``node_offline_fail_seconds`` and that has no live
row has its started runs failed (:func:`v6flow_server.services.runs.fail_runs_of_offline_node`).
When a dead replica's rows are swept, ``last_seen`` of their nodes becomes the time of the
sweep: the nodes get a full offline period to reconnect, however long the replica (or the
whole service) was down.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from v6flow.wire import utcnow
from v6flow_server.db.models import Authenticatable, Node, NodeStream, Run, Task
from v6flow_server.events import Outbox
from v6flow_server.services.nodes import OFFLINE, ONLINE, node_status_event
from v6flow_server.services.runs import STARTED, fail_runs_of_offline_node

#: A stream row not refreshed for this many presence intervals is dead.
TIMEOUT_INTERVALS = 3


def live_after(now: datetime, interval_seconds: float) -> datetime:
    """Stream rows refreshed before this are dead: their replica stopped refreshing them
    for :data:`TIMEOUT_INTERVALS` presence intervals."""
    return now - timedelta(seconds=TIMEOUT_INTERVALS * interval_seconds)


def _live_stream(live_after: datetime) -> ColumnElement[bool]:
    """The node (``authenticatable`` row of the statement) has a live stream row."""
    return exists().where(NodeStream.node_id == Authenticatable.id,
                          NodeStream.seen_at >= live_after)


def _announce(session: Session, outbox: Outbox, node_ids: Collection[int]) -> None:
    if node_ids:
        nodes = session.scalars(select(Node).where(Node.id.in_(sorted(node_ids)))
                                .execution_options(populate_existing=True)).all()
        for node in nodes:
            node_status_event(outbox, node)


def _mark_online(session: Session, outbox: Outbox, *, live_after: datetime,
                 node_ids: Collection[int] | None = None) -> list[int]:
    """Nodes not marked online that have a live stream become online (announced)."""
    stmt = update(Authenticatable).where(
        Authenticatable.type == "node",
        or_(Authenticatable.status.is_(None), Authenticatable.status != ONLINE),
        _live_stream(live_after))
    if node_ids is not None:
        stmt = stmt.where(Authenticatable.id.in_(sorted(node_ids)))
    changed = list(session.scalars(stmt.values(status=ONLINE).returning(Authenticatable.id)
                                   .execution_options(synchronize_session=False)).all())
    _announce(session, outbox, changed)
    return changed


def _mark_offline(session: Session, outbox: Outbox, *, live_after: datetime, now: datetime,
                  node_ids: Collection[int] | None = None) -> list[int]:
    """Nodes marked online without a live stream become offline, last seen ``now``."""
    stmt = update(Authenticatable).where(
        Authenticatable.type == "node", Authenticatable.status == ONLINE,
        ~_live_stream(live_after))
    if node_ids is not None:
        stmt = stmt.where(Authenticatable.id.in_(sorted(node_ids)))
    changed = list(session.scalars(
        stmt.values(status=OFFLINE, last_seen=now).returning(Authenticatable.id)
        .execution_options(synchronize_session=False)).all())
    _announce(session, outbox, changed)
    return changed


def open_stream(*, session: Session, stream_id: str, node_id: int, replica: str,
                outbox: Outbox, ip: str | None = None, now: datetime | None = None) -> None:
    """A node opened an event stream on ``replica``: record it, mark the node online."""
    now = now or utcnow()
    session.add(NodeStream(id=stream_id, node_id=node_id, replica=replica, opened_at=now,
                           seen_at=now))
    session.flush()
    values: dict[str, object] = {"last_seen": now}
    if ip is not None:
        values["ip"] = ip
    session.execute(update(Authenticatable).where(Authenticatable.id == node_id)
                    .values(**values).execution_options(synchronize_session=False))
    _mark_online(session, outbox, live_after=now, node_ids=[node_id])


def close_stream(*, session: Session, stream_id: str, node_id: int, live_after: datetime,
                 outbox: Outbox, now: datetime | None = None) -> bool:
    """A node's stream ended; the node goes offline unless it streams elsewhere.

    Returns:
        Whether the node went offline now.
    """
    now = now or utcnow()
    session.execute(delete(NodeStream).where(NodeStream.id == stream_id))
    session.execute(update(Authenticatable).where(Authenticatable.id == node_id)
                    .values(last_seen=now).execution_options(synchronize_session=False))
    return bool(_mark_offline(session, outbox, live_after=live_after, now=now,
                              node_ids=[node_id]))


def heartbeat(*, session: Session, replica: str, streams: Mapping[str, int],
              now: datetime | None = None) -> None:
    """Refresh this replica's stream rows and their nodes' ``last_seen``.

    ``streams`` (stream id → node id) are the streams open on this replica. A row another
    replica swept while this one was stalled is written again; a row of this replica that
    is not open any more (its close failed) is removed.
    """
    now = now or utcnow()
    session.execute(delete(NodeStream).where(NodeStream.replica == replica,
                                             NodeStream.id.not_in(sorted(streams) or [""])))
    if not streams:
        return
    session.execute(update(NodeStream).where(NodeStream.replica == replica)
                    .values(seen_at=now).execution_options(synchronize_session=False))
    present = set(session.scalars(select(NodeStream.id).where(NodeStream.replica == replica)))
    node_ids = set(streams.values())
    existing = set(session.scalars(select(Authenticatable.id)
                                   .where(Authenticatable.id.in_(sorted(node_ids)))))
    for stream_id, node_id in streams.items():
        if stream_id not in present and node_id in existing:
            session.add(NodeStream(id=stream_id, node_id=node_id, replica=replica,
                                   opened_at=now, seen_at=now))
    session.flush()
    session.execute(update(Authenticatable).where(Authenticatable.id.in_(sorted(existing)))
                    .values(last_seen=now).execution_options(synchronize_session=False))


def leave(*, session: Session, replica: str, live_after: datetime, outbox: Outbox,
          now: datetime | None = None) -> list[int]:
    """A replica stops: its rows go, and nodes left without a stream go offline.

    Returns:
        The ids of the nodes that went offline.
    """
    now = now or utcnow()
    gone = list(session.scalars(delete(NodeStream).where(NodeStream.replica == replica)
                                .returning(NodeStream.node_id)).all())
    return _mark_offline(session, outbox, live_after=live_after, now=now,
                         node_ids=set(gone)) if gone else []


def sweep(*, session: Session, live_after: datetime, offline_after: float, outbox: Outbox,
          now: datetime | None = None) -> list[int]:
    """Remove dead stream rows, fix node statuses, fail runs of nodes away too long.

    Nodes whose last live row went are marked offline, nodes with a live row that are not
    marked online are marked online (a race of two replicas can leave either), and the
    started runs of nodes without a live row and not seen for ``offline_after`` seconds
    fail.

    Returns:
        The ids of the runs failed now.
    """
    now = now or utcnow()
    session.execute(delete(NodeStream).where(NodeStream.seen_at < live_after))
    _mark_offline(session, outbox, live_after=live_after, now=now)
    _mark_online(session, outbox, live_after=live_after)
    cutoff = now - timedelta(seconds=offline_after)
    away = or_(Authenticatable.last_seen.is_(None), Authenticatable.last_seen < cutoff)
    with_started_runs = select(Run.id).join(Run.task).where(
        Run.organization_id == Node.organization_id,
        Task.collaboration_id == Node.collaboration_id,
        Run.status.in_(STARTED), Run.finished_at.is_(None)).exists()
    streaming = select(NodeStream.id).where(NodeStream.node_id == Node.id,
                                            NodeStream.seen_at >= live_after).exists()
    stale = session.scalars(select(Node).where(and_(away, with_started_runs, ~streaming))
                            .execution_options(populate_existing=True))
    failed: list[int] = []
    for node in stale.all():
        failed += fail_runs_of_offline_node(session=session, node=node, cutoff=cutoff,
                                            outbox=outbox)
    return failed
