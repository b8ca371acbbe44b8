"""Resource JSON as v4 emits it (CONTRACT §3.4, Appendix A): HATEOAS relations and links."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from server.auth.permissions import OPERATION_NAMES, SCOPE_NAMES, rule_key
from server.db.models import Collaboration, Node, Organization, Role, Rule, Run, Task, User
from server.services.task_state import task_finished_at, task_status
from v6flow.wire import format_datetime

API = "/api"
NodeIndex = Mapping[tuple[int, int], Node]


def _dt(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment is not None else None


def rel(resource: str, object_id: int | None) -> dict[str, Any] | None:
    """A HATEOAS relation object, or None for a missing relation."""
    if object_id is None:
        return None
    return {"id": object_id, "link": f"{API}/{resource}/{object_id}", "methods": ["GET"]}


def organization_out(org: Organization) -> dict[str, Any]:
    """Organization JSON; ``public_key`` is base64 of the PEM, or ``""``."""
    oid = org.id
    return {
        "id": oid, "name": org.name, "domain": org.domain, "address1": org.address1,
        "address2": org.address2, "zipcode": org.zipcode, "country": org.country,
        "public_key": base64.b64encode(org.public_key).decode() if org.public_key else "",
        "collaborations": f"{API}/collaboration?organization_id={oid}",
        "nodes": f"{API}/node?organization_id={oid}",
        "users": f"{API}/user?organization_id={oid}",
        "tasks": f"{API}/task?init_org_id={oid}",
        "runs": f"{API}/run?organization_id={oid}",
        "studies": f"{API}/study?organization_id={oid}",
    }


def collaboration_out(collab: Collaboration) -> dict[str, Any]:
    """Collaboration JSON."""
    cid = collab.id
    return {
        "id": cid, "name": collab.name, "encrypted": bool(collab.encrypted),
        "organizations": f"{API}/organization?collaboration_id={cid}",
        "nodes": f"{API}/node?collaboration_id={cid}",
        "tasks": f"{API}/task?collaboration_id={cid}",
        "algorithm_stores": f"{API}/algorithmstore?collaboration_id={cid}",
        "studies": f"{API}/study?collaboration_id={cid}",
    }


def node_out(node: Node) -> dict[str, Any]:
    """Node JSON (never the API key)."""
    return {
        "id": node.id, "name": node.name, "type": "node", "ip": node.ip,
        "last_seen": _dt(node.last_seen), "status": node.status,
        "organization": rel("organization", node.organization_id),
        "collaboration": rel("collaboration", node.collaboration_id),
        "config": [],
    }


def user_out(user: User) -> dict[str, Any]:
    """User JSON (never the password hash, no OTP fields)."""
    return {
        "id": user.id, "username": user.username, "firstname": user.firstname,
        "lastname": user.lastname, "email": user.email, "type": "user", "ip": user.ip,
        "last_seen": _dt(user.last_seen), "status": user.status,
        "organization": rel("organization", user.organization_id),
        "roles": f"{API}/role?user_id={user.id}",
        "rules": f"{API}/rule?user_id={user.id}",
    }


def task_out(task: Task, *, runs: list[dict[str, Any]] | None = None,
             results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Task JSON; ``runs``/``results`` replace the links when included."""
    tid = task.id
    return {
        "id": tid, "name": task.name, "description": task.description, "image": task.image,
        "job_id": task.job_id, "created_at": _dt(task.created_at),
        "status": task_status(task).value, "finished_at": _dt(task_finished_at(task)),
        "collaboration": rel("collaboration", task.collaboration_id),
        "parent": rel("task", task.parent_id),
        "children": f"{API}/task?parent_id={tid}",
        "init_org": rel("organization", task.init_org_id),
        "init_user": rel("user", task.init_user_id),
        "databases": [{"label": d.database, "parameters": d.parameters} for d in task.databases],
        "study": rel("study", task.study_id),
        "algorithm_store": rel("algorithmstore", task.algorithm_store_id),
        "runs": runs if runs is not None else f"{API}/run?task_id={tid}",
        "results": results if results is not None else f"{API}/result?task_id={tid}",
    }


def _node_summary(run: Run, nodes: NodeIndex) -> dict[str, Any] | None:
    node = nodes.get((run.organization_id, run.task.collaboration_id))
    if node is None:
        return None
    return {"id": node.id, "ip": node.ip, "status": node.status, "name": node.name}


def run_out(run: Run, nodes: NodeIndex, *, include_task: bool = False) -> dict[str, Any]:
    """Run JSON (without ``result``); ``task`` is the full task when included."""
    return {
        "id": run.id, "input": run.input, "assigned_at": _dt(run.assigned_at),
        "started_at": _dt(run.started_at), "finished_at": _dt(run.finished_at),
        "status": run.status, "log": run.log, "cleanup_at": _dt(run.cleanup_at),
        "blob_storage_used": bool(run.blob_storage_used),
        "organization": rel("organization", run.organization_id),
        "task": task_out(run.task) if include_task else rel("task", run.task_id),
        "results": {"id": run.id, "link": f"{API}/result/{run.id}"},
        "node": _node_summary(run, nodes),
        "ports": [],
    }


def result_out(run: Run) -> dict[str, Any]:
    """Result JSON (the ``/result`` view of a run)."""
    return {
        "id": run.id, "result": run.result, "cleanup_at": _dt(run.cleanup_at),
        "blob_storage_used": bool(run.blob_storage_used),
        "run": rel("run", run.id), "task": rel("task", run.task_id),
    }


def role_out(role: Role) -> dict[str, Any]:
    """Role JSON."""
    return {
        "id": role.id, "name": role.name, "description": role.description,
        "organization": rel("organization", role.organization_id),
        "rules": f"{API}/rule?role_id={role.id}", "users": f"{API}/user?role_id={role.id}",
    }


def rule_out(rule: Rule) -> dict[str, Any]:
    """Rule JSON; operation and scope are printed as enum names, like v4."""
    key = rule_key(rule.name, rule.operation, rule.scope)
    return {
        "id": rule.id, "name": rule.name, "description": rule.description,
        "operation": OPERATION_NAMES[key.operation] if key else rule.operation,
        "scope": SCOPE_NAMES[key.scope] if key else rule.scope,
    }
