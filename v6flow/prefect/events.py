"""Prefect events of v6flow fan-outs, for Automations to react to (the names live here only).

- ``v6flow.run.failed``: an organization's attempt ended in a failure status (crashed,
  failed, not allowed, start failed, ...). Resource ``v6flow.organization.<id>``; related
  ``v6flow.task.<id>``, ``v6flow.run.<id>`` and the flow run.
- ``v6flow.run.killed``: an attempt's run was killed: by its timeout, because the fan-out
  stopped (another organization failed, the flow run was cancelled), or by someone else.
  Resource and related as above.
- ``v6flow.node.offline``: an attempt failed (or was killed) while the node serving that
  organization was offline. Resource ``v6flow.node.<id>``; related the organization, the
  task and the flow run.
- ``v6flow.node.online``: a later attempt of the same flow run at that organization
  completed (the node is back). Same resources.
- ``v6flow.fanout.met-minimum`` / ``v6flow.fanout.missed-minimum``: a fan-out ended with at
  least / fewer than its minimum of successful organizations (all of them unless
  ``min_responses`` or ``allow_failures``). Resource ``v6flow.collaboration.<id>`` with the
  label ``v6flow.method``; related every task, the flow run and each failed organization
  (role ``failed-organization``).

Node status comes from the fan-out itself, not from a watcher: when an attempt fails, the
run's ``node.status`` is read once (``GET /run?task_id=``, only on failure); the node counts
as back when a later attempt of the same flow run at that organization completes. A node
that goes away and comes back while no fan-out of a flow run needs it emits nothing.

The flow run, flow, deployment and task run are attached as related resources by Prefect
from the run context. Payloads are small (reasons cut to :data:`MAX_TEXT` characters).
Emitting never raises and never waits for the API (Prefect's events worker sends them).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any
from uuid import UUID

import structlog

_log = structlog.get_logger("v6flow.prefect")

#: Longest reason text put into a payload.
MAX_TEXT = 500
#: Log lines of a failed run in a ``reason`` (the node's output order varies at the end).
REASON_LINES = 10


class V6flowEvent(StrEnum):
    """Every Prefect event name v6flow emits."""

    RUN_FAILED = "v6flow.run.failed"
    RUN_KILLED = "v6flow.run.killed"
    NODE_OFFLINE = "v6flow.node.offline"
    NODE_ONLINE = "v6flow.node.online"
    FANOUT_MET_MINIMUM = "v6flow.fanout.met-minimum"
    FANOUT_MISSED_MINIMUM = "v6flow.fanout.missed-minimum"


def resource(kind: str, id_: int | str, name: str | None = None, *,
             role: str | None = None, **labels: str) -> dict[str, str]:
    """A Prefect resource ``v6flow.<kind>.<id>`` (with a name, a role when related)."""
    out = {"prefect.resource.id": f"v6flow.{kind}.{id_}"}
    if name:
        out["prefect.resource.name"] = name
    if role:
        out["prefect.resource.role"] = role
    out.update(labels)
    return out


def flow_run_resource(flow_run_id: UUID | str) -> dict[str, str]:
    """The flow run as a related resource (Prefect's own resource id)."""
    return {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
            "prefect.resource.role": "flow-run"}


def emit(event: V6flowEvent, resource: dict[str, str],
         related: Iterable[dict[str, str]] = (), payload: dict[str, Any] | None = None) -> None:
    """Send one event through Prefect's events worker; failures are logged, never raised."""
    try:
        from prefect.events import emit_event

        emit_event(event=event.value, resource=resource, related=list(related),
                   payload=payload or {})
    except Exception as exc:  # bookkeeping must not fail the analysis
        _log.warning("cannot emit the Prefect event", event=event.value, error=str(exc))


def cut(text: str) -> str:
    """``text`` shortened to its last :data:`MAX_TEXT` characters (a log's end says most)."""
    return text if len(text) <= MAX_TEXT else "…" + text[-(MAX_TEXT - 1):]


class NodeWatch:
    """Per flow run: the organizations whose node was reported offline (bounded)."""

    MAX_FLOW_RUNS = 1000

    def __init__(self) -> None:
        self._offline: OrderedDict[UUID, dict[int, dict[str, Any]]] = OrderedDict()

    def went_offline(self, flow_run_id: UUID, organization_id: int,
                     node: dict[str, Any]) -> bool:
        """Remember it; True when it was not reported yet for this flow run."""
        nodes = self._offline.setdefault(flow_run_id, {})
        self._offline.move_to_end(flow_run_id)
        while len(self._offline) > self.MAX_FLOW_RUNS:
            self._offline.popitem(last=False)
        new = organization_id not in nodes
        nodes[organization_id] = node
        return new

    def came_back(self, flow_run_id: UUID, organization_id: int) -> dict[str, Any] | None:
        """The node reported offline for this organization (forgotten now), else None."""
        return self._offline.get(flow_run_id, {}).pop(organization_id, None)


NODES = NodeWatch()


def task_related(task_ids: Sequence[int], flow_run_id: UUID | None) -> list[dict[str, str]]:
    """The tasks (role ``task``) and the flow run as related resources."""
    related = [resource("task", t, role="task") for t in task_ids]
    if flow_run_id is not None:
        related.append(flow_run_resource(flow_run_id))
    return related
