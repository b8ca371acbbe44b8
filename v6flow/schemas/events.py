"""The push channel (``GET /api/events``): event names and the payload of each event.

The server emits these names with these payloads (:mod:`v6flow_server.events`); the client and
the node read them with :func:`parse_event`. Every payload carries ``collaboration_id``. Unknown
keys are ignored, so a newer server may add fields without breaking an older reader.

    event            payload                 sent to
    sync             SyncEvent               every subscriber, first, on each (re)connect
    new_task         NewTaskEvent            nodes of the collaboration
    run_update       RunUpdateEvent          users of the collaboration, containers of the job
    kill_containers  KillContainersEvent     nodes of the collaboration
    algorithm_log    AlgorithmLogEvent       users of the collaboration, containers of the job
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from v6flow.errors import DeserializationError
from v6flow.schemas.common import WireDatetime
from v6flow.schemas.task import KilledRun
from v6flow.status import RunStatus


class EventName(StrEnum):
    """Names of the events on ``GET /api/events``."""

    SYNC = "sync"
    NEW_TASK = "new_task"
    RUN_UPDATE = "run_update"
    KILL_CONTAINERS = "kill_containers"
    ALGORITHM_LOG = "algorithm_log"
    NODE_STATUS = "node_status"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SyncEvent(_Payload):
    """``sync``: (re)subscribed; whatever happened before this is to be read, not awaited."""


class NewTaskEvent(_Payload):
    """``new_task``: a task was created; its runs are waiting for the nodes."""

    id: int
    parent_id: int | None = None
    job_id: int | None = None
    init_org_id: int | None = None
    collaboration_id: int | None = None


class RunUpdateEvent(_Payload):
    """``run_update``: a run changed (status, start, finish)."""

    run_id: int
    task_id: int
    job_id: int | None = None
    organization_id: int | None = None
    status: RunStatus
    collaboration_id: int | None = None


class KillContainersEvent(_Payload):
    """``kill_containers``: stop the listed runs, or everything on node ``node_id`` (v4)."""

    kill_list: list[KilledRun] = Field(default_factory=list)
    node_id: int | None = None
    organization_id: int | None = None
    collaboration_id: int | None = None


class NodeStatusEvent(_Payload):
    """``node_status``: a node came online (opened its event stream) or went offline."""

    id: int
    status: str
    organization_id: int | None = None
    collaboration_id: int | None = None
    last_seen: WireDatetime | None = None


class AlgorithmLogEvent(_Payload):
    """``algorithm_log``: live log lines of a running algorithm.

    v4 nodes send one ``log`` text instead of ``lines``; :attr:`all_lines` reads both.
    """

    run_id: int
    task_id: int
    job_id: int | None = None
    organization_id: int | None = None
    lines: list[str] | None = None
    log: str | None = None
    collaboration_id: int | None = None

    @property
    def all_lines(self) -> list[str]:
        """The lines, from ``lines`` or else from the v4 ``log`` text."""
        return list(self.lines) if self.lines is not None else (self.log or "").splitlines()


EventPayload = (SyncEvent | NewTaskEvent | RunUpdateEvent | KillContainersEvent
                | AlgorithmLogEvent | NodeStatusEvent)

#: The payload model of each event name.
PAYLOADS: dict[EventName, type[EventPayload]] = {
    EventName.SYNC: SyncEvent,
    EventName.NEW_TASK: NewTaskEvent,
    EventName.RUN_UPDATE: RunUpdateEvent,
    EventName.KILL_CONTAINERS: KillContainersEvent,
    EventName.ALGORITHM_LOG: AlgorithmLogEvent,
    EventName.NODE_STATUS: NodeStatusEvent,
}


def parse_event(name: str, data: Any) -> EventPayload | None:
    """The typed payload of event ``name``; None for a name this version does not know.

    Raises:
        DeserializationError: a known event whose data does not fit its payload model.
    """
    try:
        model = PAYLOADS[EventName(name)]
    except ValueError:
        return None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}"
                           for e in exc.errors())
        raise DeserializationError(f"event {name!r} has an unexpected payload: {fields}"
                                   ) from None
