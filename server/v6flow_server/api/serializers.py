"""ORM rows → response models, shaped as v4 emits them (CONTRACT §3.4, Appendix A).

Relations are HATEOAS objects (:class:`~v6flow.schemas.Rel`), one-to-many relations are link
strings; every model comes from :mod:`v6flow.schemas`, so the client and the node read
exactly what is written here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from v6flow.schemas import (
    CollaborationOut,
    NodeOut,
    NodeSummary,
    OrganizationOut,
    PortOut,
    Rel,
    ResultOut,
    RoleOut,
    RuleOut,
    RunOut,
    RunPortOut,
    StudyOut,
    TaskDatabaseOut,
    TaskOut,
    UserOut,
)
from v6flow.status import RunStatus
from v6flow_server.auth.permissions import OPERATION_NAMES, SCOPE_NAMES, rule_key
from v6flow_server.db.models import (
    AlgorithmPort,
    Collaboration,
    Node,
    Organization,
    Role,
    Rule,
    Run,
    Study,
    Task,
    User,
)
from v6flow_server.services.task_state import task_finished_at, task_status

API = "/api"
NodeIndex = Mapping[tuple[int, int], Node]


def rel(resource: str, object_id: int) -> Rel:
    """A HATEOAS relation object."""
    return Rel(id=object_id, link=f"{API}/{resource}/{object_id}", methods=["GET"])


def maybe_rel(resource: str, object_id: int | None) -> Rel | None:
    """A relation, or None for a missing one."""
    return None if object_id is None else rel(resource, object_id)


def organization_out(org: Organization) -> OrganizationOut:
    """Organization; ``public_key`` is base64 of the PEM, or ``""``."""
    oid = org.id
    return OrganizationOut(
        id=oid, name=org.name, domain=org.domain, address1=org.address1,
        address2=org.address2, zipcode=org.zipcode, country=org.country,
        public_key=base64.b64encode(org.public_key).decode() if org.public_key else "",
        collaborations=f"{API}/collaboration?organization_id={oid}",
        nodes=f"{API}/node?organization_id={oid}",
        users=f"{API}/user?organization_id={oid}",
        tasks=f"{API}/task?init_org_id={oid}",
        runs=f"{API}/run?organization_id={oid}",
        studies=f"{API}/study?organization_id={oid}",
    )


def collaboration_out(collab: Collaboration) -> CollaborationOut:
    """Collaboration."""
    cid = collab.id
    return CollaborationOut(
        id=cid, name=collab.name, encrypted=bool(collab.encrypted),
        organizations=f"{API}/organization?collaboration_id={cid}",
        nodes=f"{API}/node?collaboration_id={cid}",
        tasks=f"{API}/task?collaboration_id={cid}",
        algorithm_stores=f"{API}/algorithmstore?collaboration_id={cid}",
        studies=f"{API}/study?collaboration_id={cid}",
    )


def study_out(study: Study, *, with_organizations: bool = False) -> StudyOut:
    """Study; ``organizations`` is a link unless ``with_organizations``."""
    sid = study.id
    return StudyOut(
        id=sid, name=study.name, collaboration=rel("collaboration", study.collaboration_id),
        organizations=([organization_out(o) for o in sorted(study.organizations,
                                                            key=lambda o: o.id)]
                       if with_organizations else f"{API}/organization?study_id={sid}"),
        tasks=f"{API}/task?study_id={sid}",
    )


def node_out(node: Node) -> NodeOut:
    """Node (never the API key)."""
    return NodeOut(
        id=node.id, name=node.name, ip=node.ip, last_seen=node.last_seen, status=node.status,
        organization=rel("organization", node.organization_id),
        collaboration=rel("collaboration", node.collaboration_id),
    )


def user_out(user: User) -> UserOut:
    """User (never the password hash, no second-factor fields)."""
    return UserOut(
        id=user.id, username=user.username, firstname=user.firstname, lastname=user.lastname,
        email=user.email, ip=user.ip, last_seen=user.last_seen, status=user.status,
        organization=rel("organization", user.organization_id),
        roles=f"{API}/role?user_id={user.id}", rules=f"{API}/rule?user_id={user.id}",
    )


def task_out(task: Task, *, runs: list[RunOut] | None = None,
             results: list[ResultOut] | None = None) -> TaskOut:
    """Task; ``runs``/``results`` replace the links when included."""
    tid = task.id
    return TaskOut(
        id=tid, name=task.name, description=task.description, image=task.image,
        job_id=task.job_id, created_at=task.created_at, status=task_status(task),
        finished_at=task_finished_at(task),
        collaboration=rel("collaboration", task.collaboration_id),
        parent=maybe_rel("task", task.parent_id),
        children=f"{API}/task?parent_id={tid}",
        init_org=rel("organization", task.init_org_id),
        init_user=maybe_rel("user", task.init_user_id),
        databases=[TaskDatabaseOut(label=d.database, parameters=d.parameters)
                   for d in task.databases],
        study=maybe_rel("study", task.study_id),
        algorithm_store=maybe_rel("algorithmstore", task.algorithm_store_id),
        flow_run_id=task.flow_run_id,
        runs=runs if runs is not None else f"{API}/run?task_id={tid}",
        results=results if results is not None else f"{API}/result?task_id={tid}",
    )


def _node_summary(run: Run, nodes: NodeIndex) -> NodeSummary | None:
    node = nodes.get((run.organization_id, run.task.collaboration_id))
    if node is None:
        return None
    return NodeSummary(id=node.id, ip=node.ip, status=node.status, name=node.name)


def run_out(run: Run, nodes: NodeIndex, *, include_task: bool = False,
            include_input: bool = False) -> RunOut:
    """Run (without ``result``); ``task`` is the whole task when included.

    ``input`` is left out unless asked for: lists must not carry every run's input (the v4
    clients treat a missing input as empty), and a list may not even have loaded it.
    """
    return RunOut(
        id=run.id, input=run.input if include_input else None, assigned_at=run.assigned_at,
        started_at=run.started_at,
        finished_at=run.finished_at, status=RunStatus(run.status), log=run.log,
        cleanup_at=run.cleanup_at, blob_storage_used=bool(run.blob_storage_used),
        organization=rel("organization", run.organization_id),
        task=task_out(run.task) if include_task else rel("task", run.task_id),
        results=Rel(id=run.id, link=f"{API}/result/{run.id}"),
        node=_node_summary(run, nodes),
        ports=[RunPortOut(id=p.id, port=p.port, label=p.label) for p in run.ports],
    )


def port_out(port: AlgorithmPort) -> PortOut:
    """A registered port of a run (v4 ``PortSchema``)."""
    return PortOut(id=port.id, port=port.port, label=port.label, run=rel("run", port.run_id))


def result_out(run: Run) -> ResultOut:
    """Result (the ``/result`` view of a run)."""
    return ResultOut(
        id=run.id, result=run.result, cleanup_at=run.cleanup_at,
        blob_storage_used=bool(run.result_in_blob),
        run=rel("run", run.id), task=rel("task", run.task_id),
    )


def role_out(role: Role) -> RoleOut:
    """Role."""
    return RoleOut(
        id=role.id, name=role.name, description=role.description,
        organization=maybe_rel("organization", role.organization_id),
        rules=f"{API}/rule?role_id={role.id}", users=f"{API}/user?role_id={role.id}",
    )


def rule_out(rule: Rule) -> RuleOut:
    """Rule; operation and scope are printed as enum names, like v4."""
    key = rule_key(rule.name, rule.operation, rule.scope)
    return RuleOut(
        id=rule.id, name=rule.name, description=rule.description,
        operation=OPERATION_NAMES[key.operation] if key else rule.operation,
        scope=SCOPE_NAMES[key.scope] if key else rule.scope,
    )
