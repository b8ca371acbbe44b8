"""The REST contract as pydantic models, shared by the server, the client and the node.

One module per resource, each with its request bodies (``…Create``, ``…Update``) and its
answers (``…Out``); :mod:`v6flow.schemas.common` holds what they share (ids, error bodies,
relations, pages, datetimes).
"""

from v6flow.schemas.audit import AuditEntryOut, AuditEvent
from v6flow.schemas.collaboration import CollaborationCreate, CollaborationOut
from v6flow.schemas.common import (
    MAX_ID,
    FieldError,
    Id,
    Msg,
    Page,
    PageLinks,
    Rel,
    ValidationMsg,
    WireDatetime,
)
from v6flow.schemas.misc import (
    AlgorithmAddressesOut,
    BlobStoreStatusOut,
    HealthOut,
    PortsDeletedOut,
    VersionOut,
)
from v6flow.schemas.node import NodeConfigItem, NodeCreate, NodeCreatedOut, NodeOut
from v6flow.schemas.organization import OrganizationCreate, OrganizationOut, OrganizationUpdate
from v6flow.schemas.role import RoleOut, RuleOut
from v6flow.schemas.task import (
    DatabaseSpec,
    KilledRun,
    KillNodeTasks,
    KillOut,
    KillTask,
    LogAppendOut,
    NodeSummary,
    OrganizationInput,
    ResultOut,
    RunLogLines,
    RunOut,
    RunUpdate,
    TaskCreate,
    TaskDatabaseOut,
    TaskOut,
    TaskStatusOut,
)
from v6flow.schemas.token import (
    ContainerTokenOut,
    ContainerTokenRequest,
    NodeLogin,
    TokenPairOut,
    UserLogin,
)
from v6flow.schemas.user import UserCreate, UserOut

__all__ = [
    "MAX_ID",
    "AlgorithmAddressesOut",
    "AuditEntryOut",
    "AuditEvent",
    "BlobStoreStatusOut",
    "CollaborationCreate",
    "CollaborationOut",
    "ContainerTokenOut",
    "ContainerTokenRequest",
    "DatabaseSpec",
    "FieldError",
    "HealthOut",
    "Id",
    "KillNodeTasks",
    "KillOut",
    "KillTask",
    "KilledRun",
    "LogAppendOut",
    "Msg",
    "NodeConfigItem",
    "NodeCreate",
    "NodeCreatedOut",
    "NodeLogin",
    "NodeOut",
    "NodeSummary",
    "OrganizationCreate",
    "OrganizationInput",
    "OrganizationOut",
    "OrganizationUpdate",
    "Page",
    "PageLinks",
    "PortsDeletedOut",
    "Rel",
    "ResultOut",
    "RoleOut",
    "RuleOut",
    "RunLogLines",
    "RunOut",
    "RunUpdate",
    "TaskCreate",
    "TaskDatabaseOut",
    "TaskOut",
    "TaskStatusOut",
    "TokenPairOut",
    "UserCreate",
    "UserLogin",
    "UserOut",
    "ValidationMsg",
    "VersionOut",
    "WireDatetime",
]
