"""The REST contract as pydantic models, shared by the server, the client and the node.

One module per resource, each with its request bodies (``…Create``, ``…Update``) and its
answers (``…Out``); :mod:`v6flow.schemas.common` holds what they share (ids, error bodies,
relations, pages, datetimes).
"""

from v6flow.schemas.account import (
    PasswordChange,
    PasswordRecover,
    PasswordReset,
    TwoFactorRecover,
    TwoFactorReset,
)
from v6flow.schemas.audit import AuditEntryOut, AuditEvent
from v6flow.schemas.collaboration import (
    CollaborationCreate,
    CollaborationOut,
    CollaborationUpdate,
)
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
from v6flow.schemas.node import NodeConfigItem, NodeCreate, NodeCreatedOut, NodeOut, NodeUpdate
from v6flow.schemas.organization import (
    OrganizationCreate,
    OrganizationIds,
    OrganizationOut,
    OrganizationRef,
    OrganizationUpdate,
)
from v6flow.schemas.role import RoleCreate, RoleOut, RoleUpdate, RuleOut
from v6flow.schemas.study import StudyCreate, StudyOut, StudyUpdate
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
    TwoFactorEnrolmentOut,
    UserLogin,
)
from v6flow.schemas.user import UserCreate, UserOut, UserUpdate

__all__ = [
    "MAX_ID",
    "AlgorithmAddressesOut",
    "AuditEntryOut",
    "AuditEvent",
    "BlobStoreStatusOut",
    "CollaborationCreate",
    "CollaborationOut",
    "CollaborationUpdate",
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
    "NodeUpdate",
    "OrganizationCreate",
    "OrganizationIds",
    "OrganizationInput",
    "OrganizationOut",
    "OrganizationRef",
    "OrganizationUpdate",
    "Page",
    "PageLinks",
    "PasswordChange",
    "PasswordRecover",
    "PasswordReset",
    "PortsDeletedOut",
    "Rel",
    "ResultOut",
    "RoleCreate",
    "RoleOut",
    "RoleUpdate",
    "RuleOut",
    "RunLogLines",
    "RunOut",
    "RunUpdate",
    "StudyCreate",
    "StudyOut",
    "StudyUpdate",
    "TaskCreate",
    "TaskDatabaseOut",
    "TaskOut",
    "TaskStatusOut",
    "TokenPairOut",
    "TwoFactorEnrolmentOut",
    "TwoFactorRecover",
    "TwoFactorReset",
    "UserCreate",
    "UserLogin",
    "UserOut",
    "UserUpdate",
    "ValidationMsg",
    "VersionOut",
    "WireDatetime",
]
