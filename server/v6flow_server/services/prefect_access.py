"""What an algorithm container may do on the Prefect API through ``/api/prefect`` (pure rules).

A flow that runs as a central task (docs/central-tasks.md) reports its flow run to the
server's Prefect API with its container token; :mod:`v6flow_server.prefect_gateway` forwards what
these rules allow, with the server's own credentials. Users and nodes get 403: they talk to
Prefect directly.

| request (path below ``/api/prefect``)                   | a container may, when            |
|---------------------------------------------------------|----------------------------------|
| ``GET admin/version``, ``admin/storage``, ``health``,   | always (what a Prefect client    |
| ``csrf-token``                                          | asks before it starts)           |
| ``POST flows/``, ``GET flows/<id>``                     | always (a flow is only a name)   |
| ``POST flow_runs/``                                     | no deployment, no parent task    |
|                                                         | run, no work pool; the server    |
|                                                         | sets the ownership tags          |
| ``GET``/``PATCH flow_runs/<id>``, ``POST flow_runs/<id> | the flow run is its task's       |
| /set_state``, ``PATCH flow_runs/<id>/labels``           |                                  |
| ``POST logs/``                                          | every row names a flow run of    |
|                                                         | its task                         |
| ``POST events``                                         | every event is about a flow run  |
|                                                         | of its task (or one of its task  |
|                                                         | runs, artifacts, v6flow objects) |
| ``POST artifacts/``, ``PATCH artifacts/<id>``           | the artifact's flow run is its   |
|                                                         | task's                           |

Everything else (deployments, other flow runs, filters, work pools, blocks, variables,
concurrency limits, automations, DELETE of anything) is refused.

Ownership lives in Prefect itself, so every replica agrees: when a container creates a flow
run, the server replaces the tags it sent that start with ``v6flow.`` by
``v6flow.task:<task>``, ``v6flow.job:<job>`` and ``v6flow.collaboration:<collaboration>``
(plus ``v6flow``), and a later request may touch that flow run only when it carries the
caller's ``v6flow.task:<task>`` tag. A container cannot change those tags afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from v6flow_server.auth.principals import ContainerIdentity, Identity
from v6flow_server.errors import BadRequestError, ForbiddenError

#: Tags of a flow run that say which v6flow task, job and collaboration it belongs to.
TAG_PREFIX = "v6flow."
TASK_TAG = "v6flow.task:{}"
JOB_TAG = "v6flow.job:{}"
COLLABORATION_TAG = "v6flow.collaboration:{}"
ORGANIZATION_TAG = "v6flow.organization:{}"
MARKER_TAG = "v6flow"
_TASK_TAG = re.compile(r"^v6flow\.task:([1-9][0-9]{0,18})$")

ONLY_CONTAINERS = ("Only algorithm containers (central flows) use /api/prefect; users and "
                   "nodes talk to the Prefect API directly")


class Endpoint(StrEnum):
    """The Prefect API requests a central flow run makes."""

    VERSION = "admin/version"
    STORAGE = "admin/storage"
    HEALTH = "health"
    CSRF = "csrf-token"
    CREATE_FLOW = "create flow"
    READ_FLOW = "read flow"
    CREATE_FLOW_RUN = "create flow run"
    READ_FLOW_RUN = "read flow run"
    UPDATE_FLOW_RUN = "update flow run"
    SET_FLOW_RUN_STATE = "set flow run state"
    UPDATE_FLOW_RUN_LABELS = "update flow run labels"
    CREATE_LOGS = "create logs"
    CREATE_EVENTS = "create events"
    CREATE_ARTIFACT = "create artifact"
    UPDATE_ARTIFACT = "update artifact"


_UUID = r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
#: ``(method, path pattern, endpoint)``; a pattern's group, if any, is the object's id.
ROUTES: tuple[tuple[str, re.Pattern[str], Endpoint], ...] = tuple(
    (method, re.compile(pattern), endpoint) for method, pattern, endpoint in (
        ("GET", r"admin/version", Endpoint.VERSION),
        ("GET", r"admin/storage", Endpoint.STORAGE),
        ("GET", r"health", Endpoint.HEALTH),
        ("GET", r"csrf-token", Endpoint.CSRF),
        ("POST", r"flows/?", Endpoint.CREATE_FLOW),
        ("GET", rf"flows/{_UUID}", Endpoint.READ_FLOW),
        ("POST", r"flow_runs/?", Endpoint.CREATE_FLOW_RUN),
        ("GET", rf"flow_runs/{_UUID}", Endpoint.READ_FLOW_RUN),
        ("PATCH", rf"flow_runs/{_UUID}", Endpoint.UPDATE_FLOW_RUN),
        ("POST", rf"flow_runs/{_UUID}/set_state", Endpoint.SET_FLOW_RUN_STATE),
        ("PATCH", rf"flow_runs/{_UUID}/labels", Endpoint.UPDATE_FLOW_RUN_LABELS),
        ("POST", r"logs/?", Endpoint.CREATE_LOGS),
        ("POST", r"events", Endpoint.CREATE_EVENTS),
        ("POST", r"artifacts/?", Endpoint.CREATE_ARTIFACT),
        ("PATCH", rf"artifacts/{_UUID}", Endpoint.UPDATE_ARTIFACT),
    ))

#: Fields of ``POST flow_runs/`` a container may set (others must be absent or null).
FLOW_RUN_CREATE_FIELDS = frozenset({
    "state", "name", "flow_id", "flow_version", "parameters", "context", "empirical_policy",
    "tags", "labels", "idempotency_key", "parent_task_run_id"})
#: Fields of ``PATCH flow_runs/<id>`` a container may set.
FLOW_RUN_UPDATE_FIELDS = frozenset({"name", "flow_version", "parameters", "empirical_policy",
                                    "tags"})
#: Primary resources an event of a container may be about (``prefect.resource.id`` prefix).
EVENT_RESOURCES = ("prefect.flow-run.", "prefect.task-run.", "prefect.artifact.", "v6flow.")
#: Related resources an event may name.
RELATED_RESOURCES = (*EVENT_RESOURCES, "prefect.flow.", "prefect.tag.")
_FLOW_RUN_RESOURCE = "prefect.flow-run."


@dataclass(frozen=True)
class PrefectCall:
    """One allowed request: what it is and the id its path names (if any)."""

    endpoint: Endpoint
    object_id: UUID | None = None

    def named_id(self) -> UUID:
        """The id the path names.

        Raises:
            ForbiddenError: the path names none.
        """
        if self.object_id is None:
            raise ForbiddenError(f"{self.endpoint} needs an id in its path")
        return self.object_id


def require_container(identity: Identity) -> ContainerIdentity:
    """The caller as an algorithm container.

    Raises:
        ForbiddenError: a user or node token.
    """
    if not isinstance(identity, ContainerIdentity):
        raise ForbiddenError(ONLY_CONTAINERS)
    return identity


def classify(method: str, path: str) -> PrefectCall:
    """The allowed request ``method path`` is (``path`` below ``/api/prefect/``).

    Raises:
        ForbiddenError: not a request a central flow run may make.
    """
    for allowed, pattern, endpoint in ROUTES:
        match = pattern.fullmatch(path)
        if method == allowed and match is not None:
            object_id = UUID(match.group(1)) if pattern.groups else None
            return PrefectCall(endpoint=endpoint, object_id=object_id)
    raise ForbiddenError(f"{method} /prefect/{path[:200]} is not available to algorithm "
                         "containers (only their own flow run's requests are)")


def owner_tags(container: ContainerIdentity) -> list[str]:
    """The tags that make a flow run the container's task's."""
    return [MARKER_TAG, TASK_TAG.format(container.task_id), JOB_TAG.format(container.job_id),
            COLLABORATION_TAG.format(container.collaboration_id),
            ORGANIZATION_TAG.format(container.organization_id)]


def owner_task(tags: Any) -> int | None:
    """The v6flow task a flow run belongs to, from its tags (None: no or several)."""
    if not isinstance(tags, list):
        return None
    owners = {int(m.group(1)) for tag in tags if isinstance(tag, str)
              and (m := _TASK_TAG.match(tag)) is not None}
    return owners.pop() if len(owners) == 1 else None


def _own_tags(container: ContainerIdentity, tags: Any) -> list[str]:
    """The container's tags without any ``v6flow`` one, then the server's."""
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise BadRequestError("flow run 'tags' must be a list of strings")
    kept = [tag for tag in tags if tag != MARKER_TAG and not tag.startswith(TAG_PREFIX)]
    return kept + owner_tags(container)


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestError(f"{what}: the body must be a JSON object")
    return body


def flow_run_create(body: Any, container: ContainerIdentity) -> dict[str, Any]:
    """The ``POST flow_runs/`` body to send: checked, with the ownership tags.

    An ``idempotency_key`` is scoped to the task (else a container could name another
    flow run's key and be answered with that flow run).

    Raises:
        BadRequestError: not a JSON object, or malformed tags.
        ForbiddenError: it sets a deployment, a parent task run (a subflow), a work pool...
    """
    checked = dict(_object(body, "flow run"))
    for name, value in checked.items():
        if value is not None and name not in FLOW_RUN_CREATE_FIELDS:
            raise ForbiddenError(f"a central flow run may not set '{name}'")
    if checked.get("parent_task_run_id") is not None:
        raise ForbiddenError("subflows are not available to central flows "
                             "('parent_task_run_id')")
    checked["tags"] = _own_tags(container, checked.get("tags"))
    key = checked.get("idempotency_key")
    if key is not None:
        checked["idempotency_key"] = f"v6flow.task:{container.task_id}:{key}"
    return checked


def flow_run_update(body: Any, container: ContainerIdentity) -> dict[str, Any]:
    """The ``PATCH flow_runs/<id>`` body to send (tags keep the ownership tags).

    Raises:
        BadRequestError: not a JSON object, or malformed tags.
        ForbiddenError: it sets something else than the name, version, parameters, policy
            or tags.
    """
    checked = dict(_object(body, "flow run update"))
    for name, value in checked.items():
        if value is not None and name not in FLOW_RUN_UPDATE_FIELDS:
            raise ForbiddenError(f"a central flow run may not change '{name}'")
    if checked.get("tags") is not None:
        checked["tags"] = _own_tags(container, checked["tags"])
    return checked


def _uuid(value: Any, what: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise BadRequestError(f"{what} is not a UUID") from None


def log_flow_runs(body: Any) -> set[UUID]:
    """The flow runs a ``POST logs/`` batch writes to (every row must name one).

    Raises:
        BadRequestError: not a list of objects.
        ForbiddenError: a row names no flow run.
    """
    if not isinstance(body, list) or not all(isinstance(row, dict) for row in body):
        raise BadRequestError("logs: the body must be a JSON list of objects")
    runs: set[UUID] = set()
    for row in body:
        if row.get("flow_run_id") is None:
            raise ForbiddenError("a central flow may only write logs of its flow run "
                                 "('flow_run_id' is missing)")
        runs.add(_uuid(row["flow_run_id"], "logs: 'flow_run_id'"))
    return runs


def _resource_id(resource: Any, what: str) -> str:
    if not isinstance(resource, dict) or not isinstance(
            resource.get("prefect.resource.id"), str):
        raise BadRequestError(f"events: {what} has no 'prefect.resource.id'")
    return str(resource["prefect.resource.id"])


def _flow_run_of(resource_id: str) -> UUID | None:
    if not resource_id.startswith(_FLOW_RUN_RESOURCE):
        return None
    return _uuid(resource_id.removeprefix(_FLOW_RUN_RESOURCE), f"events: {resource_id[:80]!r}")


def event_flow_runs(body: Any) -> set[UUID]:
    """The flow runs a ``POST events`` batch is about; each event must be about one.

    Raises:
        BadRequestError: not a list of events.
        ForbiddenError: an event about something else than a flow run, its task runs and
            artifacts or v6flow objects, or one that names no flow run.
    """
    if not isinstance(body, list) or not all(isinstance(event, dict) for event in body):
        raise BadRequestError("events: the body must be a JSON list of events")
    runs: set[UUID] = set()
    for event in body:
        primary = _resource_id(event.get("resource"), "an event's resource")
        if not primary.startswith(EVENT_RESOURCES):
            raise ForbiddenError(f"a central flow may not emit events about {primary[:80]!r}")
        related = event.get("related") or []
        if not isinstance(related, list):
            raise BadRequestError("events: 'related' must be a list")
        named: set[UUID] = set()
        for resource_id in [primary, *(_resource_id(r, "a related resource")
                                       for r in related)]:
            if not resource_id.startswith(RELATED_RESOURCES):
                raise ForbiddenError(
                    f"a central flow's events may not name {resource_id[:80]!r}")
            flow_run = _flow_run_of(resource_id)
            if flow_run is not None:
                named.add(flow_run)
        if not named:
            raise ForbiddenError(f"event {str(event.get('event'))[:80]!r} names no flow run "
                                 "(a central flow's events must be about its flow run)")
        runs |= named
    return runs


def artifact_flow_run(body: Any) -> UUID:
    """The flow run a ``POST artifacts/`` body belongs to.

    Raises:
        BadRequestError: not a JSON object.
        ForbiddenError: no flow run (an artifact of no run).
    """
    body = _object(body, "artifact")
    if body.get("flow_run_id") is None:
        raise ForbiddenError("a central flow's artifacts must name its flow run "
                             "('flow_run_id')")
    return _uuid(body["flow_run_id"], "artifact 'flow_run_id'")


def first_foreign(owners: Iterable[tuple[UUID, int | None]],
                  container: ContainerIdentity) -> UUID | None:
    """The first flow run among ``(flow run, owner task)`` that is not the container's."""
    return next((run for run, task in owners if task != container.task_id), None)
