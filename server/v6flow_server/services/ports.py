"""Ports of algorithm runs and who may reach them: registration, addresses, relay pairing.

A node registers the ports its run's container listens on (``POST /port``, only for a run it
holds and that has not finished) and removes them when the run ends. Containers of one *job*
reach each other, nothing else reaches them: the addresses a container is shown
(:func:`algorithm_addresses`, v4's filters) and the connections the relay pairs
(:func:`authorize_dial`, :func:`authorize_accept`) both stay inside the caller's job, and
the dialled port must be one its run registered.

A container's run is the run of its token's task at its token's organization (one run per
organization per task), so no extra claim is needed to name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, delete, select
from sqlalchemy.orm import Session

from v6flow.schemas import MAX_PORTS_PER_RUN, AlgorithmAddress, PortCreate
from v6flow.status import RunStatus
from v6flow_server.auth.permissions import Operation, Resource
from v6flow_server.auth.principals import ContainerIdentity, Identity, NodeIdentity
from v6flow_server.db.models import AlgorithmPort, Node, Run, Task
from v6flow_server.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)
from v6flow_server.services.common import get_or_404
from v6flow_server.services.organizations import NO_PERMISSION
from v6flow_server.services.reach import Reach, job_reach, scope_reach

NOT_YOUR_RUN = "You lack the permissions to do that! (the run belongs to another node)"


def _is_finished(run: Run) -> bool:
    return run.finished_at is not None or RunStatus(run.status).is_finished


def _held_run(session: Session, node: NodeIdentity, run_id: int) -> Run:
    """A run of this node's organization in its collaboration.

    Raises:
        NotFoundError: no such run.
        UnauthorizedError: another node's run (v4 answers 401).
    """
    run = get_or_404(session, Run, run_id, "Run")
    if (run.organization_id != node.organization_id
            or run.task.collaboration_id != node.collaboration_id):
        raise UnauthorizedError(NOT_YOUR_RUN)
    return run


# --- the node's registry -------------------------------------------------------------------
def register_port(*, session: Session, node: NodeIdentity, data: PortCreate) -> AlgorithmPort:
    """Record that ``data.run_id``'s container listens on ``data.port``.

    Raises:
        NotFoundError: no such run.
        UnauthorizedError: the run belongs to another node.
        BadRequestError: the run has finished, or already has the most ports allowed.
        ConflictError: the port is already registered for this run.
    """
    run = _held_run(session, node, data.run_id)
    if _is_finished(run):
        raise BadRequestError(f"Run id={run.id} has finished: it listens on no port")
    taken = {p.port for p in run.ports}
    if data.port in taken:
        raise ConflictError(f"Port {data.port} is already registered for run id={run.id}")
    if len(taken) >= MAX_PORTS_PER_RUN:
        raise BadRequestError(f"A run may register at most {MAX_PORTS_PER_RUN} ports")
    port = AlgorithmPort(run_id=run.id, port=data.port, label=data.label)
    session.add(port)
    session.flush()
    return port


def delete_ports(*, session: Session, node: NodeIdentity, run_id: int) -> int:
    """Remove every port of a run this node holds; returns how many there were.

    Raises:
        NotFoundError: no such run.
        UnauthorizedError: the run belongs to another node.
    """
    run = _held_run(session, node, run_id)
    count = len(run.ports)
    session.execute(delete(AlgorithmPort).where(AlgorithmPort.run_id == run.id))
    session.expire(run, ["ports"])
    return count


def port_reach(identity: Identity) -> Reach | None:
    """What ``identity`` may see of ports: the port VIEW rule, or a container's own job."""
    if isinstance(identity, ContainerIdentity):
        return job_reach(identity)
    return scope_reach(identity, identity.scope(Resource.PORT, Operation.VIEW))


def list_ports(*, identity: Identity, run_id: int | None = None) -> Select[AlgorithmPort]:
    """Query of the visible ports (optionally of one run), by run and port.

    Raises:
        ForbiddenError: the caller has no port VIEW rule.
    """
    reach = port_reach(identity)
    if reach is None:
        raise ForbiddenError(NO_PERMISSION)
    visible: ColumnElement[bool] = reach.condition(
        collaboration_id=Task.collaboration_id, organization_id=Run.organization_id,
        job_id=Task.job_id)
    stmt = (select(AlgorithmPort).join(AlgorithmPort.run).join(Run.task).where(visible)
            .order_by(AlgorithmPort.run_id, AlgorithmPort.port))
    if run_id is not None:
        stmt = stmt.where(AlgorithmPort.run_id == run_id)
    return stmt


# --- addresses -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AddressFilter:
    """The query options of ``GET /vpn/algorithm/addresses`` (v4's names and rules)."""

    only_children: bool = False
    only_parent: bool = False
    only_siblings: bool = False
    only_self: bool = False
    include_children: bool = False
    include_parent: bool = False
    label: str | None = None

    def check(self) -> None:
        """Refuse what v4 refuses: more than one ``only_*`` option.

        (v4's second check, an ``only_*`` with an ``include_*`` of the same level, can never
        fire after this one; an ``only_*`` simply wins over any ``include_*``.)

        Raises:
            BadRequestError: two ``only_*`` options.
        """
        only = [self.only_children, self.only_parent, self.only_siblings, self.only_self]
        if only.count(True) > 1:
            raise BadRequestError("You can only specify one of the only_<...> parameters!")


def own_run(session: Session, container: ContainerIdentity) -> Run:
    """The run of a container: its task's run at its organization.

    Raises:
        UnauthorizedError: there is none (the token cannot belong to a live run).
    """
    run = session.scalar(select(Run).where(Run.task_id == container.task_id,
                                           Run.organization_id == container.organization_id))
    if run is None:
        raise UnauthorizedError("Container-token is not valid: it names no run")
    return run


def _address_task_ids(session: Session, task: Task, query: AddressFilter) -> list[int]:
    """The tasks whose runs' ports are asked for (v4 ``VPNAddress.get``)."""
    task_ids = [task.id]
    if query.include_children or query.only_children:
        children = list(session.scalars(select(Task.id).where(Task.parent_id == task.id)))
        task_ids = children if query.only_children else task_ids + children
    if (query.include_parent or query.only_parent) and task.parent_id is not None:
        task_ids = [task.parent_id] if query.only_parent else [*task_ids, task.parent_id]
    elif query.only_parent:
        task_ids = []
    if query.only_siblings or query.only_self:
        task_ids = [task.id]
    return task_ids


def algorithm_addresses(*, session: Session, container: ContainerIdentity,
                        query: AddressFilter) -> list[AlgorithmAddress]:
    """The registered ports of the caller's task (and, as asked, its parent or children).

    ``only_siblings`` leaves out the caller's own organization, ``only_self`` keeps only it.
    Every task asked about is in the caller's job by construction (its own, its parent,
    its children), and finished runs are left out.

    Raises:
        BadRequestError: incompatible options.
    """
    query.check()
    task = get_or_404(session, Task, container.task_id, "Task")
    task_ids = _address_task_ids(session, task, query)
    if not task_ids:
        return []
    stmt = (select(AlgorithmPort, Run, Task).join(AlgorithmPort.run).join(Run.task)
            .where(Run.task_id.in_(task_ids), Task.job_id == container.job_id,
                   Run.finished_at.is_(None))
            .order_by(Run.id, AlgorithmPort.port))
    if query.only_siblings:
        stmt = stmt.where(Run.organization_id != container.organization_id)
    elif query.only_self:
        stmt = stmt.where(Run.organization_id == container.organization_id)
    if query.label:
        stmt = stmt.where(AlgorithmPort.label == query.label)
    rows = session.execute(stmt).all()
    nodes = {(n.organization_id, n.collaboration_id): n for n in session.scalars(
        select(Node).where(Node.collaboration_id == container.collaboration_id))}
    addresses = []
    for port, run, run_task in rows:
        if RunStatus(run.status).is_finished:
            continue
        node = nodes.get((run.organization_id, run_task.collaboration_id))
        addresses.append(AlgorithmAddress(
            ip=node.ip if node is not None else None, port=port.port, label=port.label,
            organization_id=run.organization_id, task_id=run.task_id,
            parent_id=run_task.parent_id, run_id=run.id))
    return addresses


# --- relay pairing -------------------------------------------------------------------------
@dataclass(frozen=True)
class RelayTarget:
    """A run port that a container of the same job may be connected to."""

    run_id: int
    port: int
    job_id: int


def authorize_dial(*, session: Session, container: ContainerIdentity, run_id: int,
                   port: int) -> RelayTarget:
    """May ``container`` open a connection to ``port`` of run ``run_id``?

    Only a live run of the caller's own job, on a port that run registered.

    Raises:
        NotFoundError: no such run, or it has not registered ``port``.
        ForbiddenError: the run is in another job.
        BadRequestError: the run has finished.
    """
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"Run id={run_id} not found")
    if run.task.job_id != container.job_id or \
            run.task.collaboration_id != container.collaboration_id:
        raise ForbiddenError("Only runs of the same job may connect to each other")
    if _is_finished(run):
        raise BadRequestError(f"Run id={run_id} has finished")
    if port not in {p.port for p in run.ports}:
        raise NotFoundError(f"Run id={run_id} has not registered port {port}")
    return RelayTarget(run_id=run.id, port=port, job_id=run.task.job_id)


def authorize_listen(*, session: Session, container: ContainerIdentity) -> int:
    """The run a container's node may accept relayed connections for (its own, live run).

    Raises:
        UnauthorizedError: the token names no run.
        BadRequestError: the run has finished.
    """
    run = own_run(session, container)
    if _is_finished(run):
        raise BadRequestError(f"Run id={run.id} has finished")
    return run.id
