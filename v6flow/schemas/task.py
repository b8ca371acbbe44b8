"""Tasks, their runs at each organization, and the results those runs hand back.

Unknown keys in a task body are ignored (v4 clients send extras such as ``server_url``),
except in ``databases`` items, where v4 allows only ``label/query/sheet_name/preprocessing/
arguments``.

A task's ``image`` must be a Docker image reference (:func:`image_reference_problem`, the
grammar of distribution/reference): ``../../../etc/passwd`` is refused, not stored.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from v6flow.schemas.common import (
    DatabaseLabel,
    Id,
    MultiLine,
    Rel,
    SingleLine,
    StoredText,
    WireDatetime,
)
from v6flow.schemas.port import RunPortOut
from v6flow.status import RunStatus

#: The most live log lines one ``POST /run/<id>/log`` may carry.
MAX_LOG_LINES_PER_CALL = 1000
#: The longest image reference a task may name (the stored column's size).
MAX_IMAGE_LENGTH = 1024
#: The longest repository name Docker accepts (domain and path, without tag and digest).
MAX_IMAGE_NAME_LENGTH = 255

_ALPHANUMERIC = "[a-z0-9]+"
_PATH_COMPONENT = re.compile(f"{_ALPHANUMERIC}(?:(?:[._]|__|-+){_ALPHANUMERIC})*")
_DOMAIN_COMPONENT = re.compile("[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?")
_PORT = re.compile("[0-9]+")
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile("[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


def _host_problem(host: str) -> str | None:
    if host.startswith("["):
        if not host.endswith("]"):
            return f"registry host {_short(host)} opens '[' without closing it"
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"registry host {_short(host)} is not an IPv6 address"
        return None
    if not all(_DOMAIN_COMPONENT.fullmatch(part) for part in host.split(".")):
        return f"registry host {_short(host)} is not a domain name"
    return None


def _domain_problem(domain: str) -> str | None:
    host, port = domain, None
    if (":" in domain and not domain.endswith("]")) or "]:" in domain:
        host, port = domain.rsplit(":", 1)
    if port is not None and not _PORT.fullmatch(port):
        return f"registry port {_short(port)} is not a number"
    return _host_problem(host)


def _is_domain(first: str) -> bool:
    """Docker's rule: the first of several components is a registry when it looks like one."""
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def image_reference_problem(reference: str) -> str | None:
    """What is wrong with a Docker image reference, or None when it is valid.

    Grammar (distribution/reference): ``[domain/]path[:tag][@digest]``, where ``domain`` is
    ``host[:port]``, each path component is lowercase alphanumerics joined by ``.``, ``_``,
    ``__`` or dashes, a tag is ``\\w[\\w.-]{0,127}`` and a digest is
    ``algorithm:hex`` with at least 32 hex digits. The name is at most 255 characters.

    Examples:
        >>> image_reference_problem("harbor2.vantage6.ai/demo/average:latest") is None
        True
        >>> image_reference_problem("../../../etc/passwd")
        "registry host '..' is not a domain name"
    """
    if not reference:
        return "the image reference is empty"
    name, digest = reference, None
    if "@" in reference:
        name, digest = reference.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            return f"digest {_short(digest)} must be 'algorithm:hex' with at least 32 hex digits"
    last_slash = name.rfind("/")
    tag = None
    if name.rfind(":") > last_slash:
        name, tag = name.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            return (f"tag {_short(tag)} must be letters, digits or '_', then also '.' or '-' "
                    "(128 at most)")
    if len(name) > MAX_IMAGE_NAME_LENGTH:
        return f"the image name is longer than {MAX_IMAGE_NAME_LENGTH} characters"
    components = name.split("/")
    if len(components) > 1 and _is_domain(components[0]):
        problem = _domain_problem(components[0])
        if problem is not None:
            return problem
        components = components[1:]
    for component in components:
        if not _PATH_COMPONENT.fullmatch(component):
            return (f"path component {_short(component)} must be lowercase letters and "
                    "digits joined by '.', '_', '__' or '-'")
    return None


def _image_reference(value: str) -> str:
    problem = image_reference_problem(value)
    if problem is not None:
        raise ValueError(f"not a Docker image reference: {problem}")
    return value


ImageReference = Annotated[str, AfterValidator(_image_reference), Field(
    min_length=1, max_length=MAX_IMAGE_LENGTH,
    description="A Docker image reference: [registry[:port]/]name[:tag][@digest].")]
"""A Docker image reference, checked against Docker's grammar."""


class DatabaseSpec(BaseModel):
    """One ``databases`` item of a task."""

    model_config = ConfigDict(extra="forbid")

    label: DatabaseLabel
    query: MultiLine | None = None
    sheet_name: SingleLine | None = Field(default=None, max_length=255)
    preprocessing: list[dict[str, Any]] | None = None
    arguments: dict[str, Any] | None = None


class OrganizationInput(BaseModel):
    """One target organization of a task with its (possibly encrypted) input."""

    id: Id
    input: StoredText = ""


class TaskCreate(BaseModel):
    """``POST /task``."""

    image: ImageReference
    organizations: list[OrganizationInput] = Field(min_length=1)
    collaboration_id: Id | None = None
    study_id: Id | None = None
    store_id: Id | None = None
    name: SingleLine | None = Field(default=None, max_length=255)
    description: MultiLine | None = None
    databases: list[DatabaseSpec] = Field(default_factory=list)
    flow_run_id: str | None = Field(
        default=None, description="Prefect flow run that created the task (UUID text).")

    @field_validator("databases", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        """``null`` means no databases."""
        return [] if value is None else value

    @field_validator("flow_run_id")
    @classmethod
    def _uuid_text(cls, value: str | None) -> str | None:
        """A UUID, stored in its canonical lowercase form."""
        return None if value is None else str(UUID(value))


class TaskDatabaseOut(BaseModel):
    """A database a task asked for: its label and the other keys as compact JSON text."""

    label: str
    parameters: str


class NodeSummary(BaseModel):
    """The node that serves a run's organization in the task's collaboration."""

    id: int
    ip: str | None = None
    status: str | None = None
    name: str


class ResultOut(BaseModel):
    """The result view of a run (``/result``)."""

    id: int
    result: str | None = None
    cleanup_at: WireDatetime | None = None
    blob_storage_used: bool = False
    run: Rel
    task: Rel


class RunOut(BaseModel):
    """A run: one organization's execution of a task (``result`` is under ``/result``)."""

    id: int
    input: str | None = None
    assigned_at: WireDatetime | None = None
    started_at: WireDatetime | None = None
    finished_at: WireDatetime | None = None
    status: RunStatus
    log: str | None = None
    cleanup_at: WireDatetime | None = None
    blob_storage_used: bool = False
    organization: Rel
    task: TaskOut | Rel = Field(description="A relation, or the whole task with include=task.")
    results: Rel
    node: NodeSummary | None = None
    ports: list[RunPortOut] = Field(default_factory=list,
                                   description="Ports its container listens on (while it runs).")


class TaskOut(BaseModel):
    """A task; ``runs``/``results`` are links unless included (``include=runs|results``)."""

    id: int
    name: str | None = None
    description: str | None = None
    image: str
    job_id: int
    created_at: WireDatetime | None = None
    status: RunStatus
    finished_at: WireDatetime | None = None
    collaboration: Rel
    parent: Rel | None = None
    children: str
    init_org: Rel
    init_user: Rel | None = None
    databases: list[TaskDatabaseOut] = Field(default_factory=list)
    study: Rel | None = None
    algorithm_store: Rel | None = None
    flow_run_id: str | None = None
    runs: str | list[RunOut]
    results: str | list[ResultOut]


RunOut.model_rebuild()


class TaskStatusOut(BaseModel):
    """``GET /task/<id>/status``: the status derived from the task's runs."""

    status: RunStatus


class RunUpdate(BaseModel):
    """``PATCH /run/<id>``: only the keys present in the body are changed."""

    status: RunStatus | None = None
    started_at: WireDatetime | None = None
    finished_at: WireDatetime | None = None
    result: StoredText | None = None
    log: str | None = Field(default=None, description="The whole log; the server keeps its "
                            "tail and replaces characters it cannot store.")


class RunLogLines(BaseModel):
    """``POST /run/<id>/log``: live log lines of a running algorithm."""

    lines: list[str] = Field(max_length=MAX_LOG_LINES_PER_CALL, description=(
        f"At most {MAX_LOG_LINES_PER_CALL} lines; the server cuts overlong lines and keeps "
        "the tail of the log."))


class LogAppendOut(BaseModel):
    """``POST /run/<id>/log``."""

    msg: str
    lines: int


class KillTask(BaseModel):
    """``POST /kill/task``."""

    id: Id


class KillNodeTasks(BaseModel):
    """``POST /kill/node/tasks``."""

    id: Id


class KilledRun(BaseModel):
    """One run a kill reached."""

    task_id: int
    run_id: int
    organization_id: int


class KillOut(BaseModel):
    """What a kill did."""

    msg: str
    kill_list: list[KilledRun]
