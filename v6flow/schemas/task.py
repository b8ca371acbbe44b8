"""Tasks, their runs at each organization, and the results those runs hand back.

Unknown keys in a task body are ignored (v4 clients send extras such as ``server_url``),
except in ``databases`` items, where v4 allows only ``label/query/sheet_name/preprocessing/
arguments``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from v6flow.schemas.common import Id, Rel, WireDatetime
from v6flow.status import RunStatus


class DatabaseSpec(BaseModel):
    """One ``databases`` item of a task."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=255)
    query: str | None = None
    sheet_name: str | None = None
    preprocessing: list[dict[str, Any]] | None = None
    arguments: dict[str, Any] | None = None


class OrganizationInput(BaseModel):
    """One target organization of a task with its (possibly encrypted) input."""

    id: Id
    input: str = ""


class TaskCreate(BaseModel):
    """``POST /task``."""

    image: str = Field(min_length=1, max_length=1024)
    organizations: list[OrganizationInput] = Field(min_length=1)
    collaboration_id: Id | None = None
    study_id: Id | None = None
    store_id: Id | None = None
    name: str | None = Field(default=None, max_length=255)
    description: str | None = None
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
    ports: list[dict[str, Any]] = Field(default_factory=list)


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
    result: str | None = None
    log: str | None = None


class RunLogLines(BaseModel):
    """``POST /run/<id>/log``: live log lines of a running algorithm."""

    lines: list[str]


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
