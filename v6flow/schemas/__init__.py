"""Pydantic models of the REST request bodies (vantage6 v4 shapes), shared by server and clients."""

from v6flow.schemas.requests import (
    CollaborationCreate,
    ContainerTokenRequest,
    DatabaseSpec,
    KillNodeTasks,
    KillTask,
    NodeCreate,
    NodeLogin,
    OrganizationCreate,
    OrganizationInput,
    OrganizationUpdate,
    RunLogLines,
    RunUpdate,
    TaskCreate,
    UserCreate,
    UserLogin,
)

__all__ = [
    "CollaborationCreate",
    "ContainerTokenRequest",
    "DatabaseSpec",
    "KillNodeTasks",
    "KillTask",
    "NodeCreate",
    "NodeLogin",
    "OrganizationCreate",
    "OrganizationInput",
    "OrganizationUpdate",
    "RunLogLines",
    "RunUpdate",
    "TaskCreate",
    "UserCreate",
    "UserLogin",
]
