"""v6flow: federated analysis with Prefect flows as central functions.

The top-level package stays light: algorithm images import it, so nothing here may pull in
prefect, fastapi, sqlalchemy or docker.
"""

from v6flow.errors import (
    AlgorithmError,
    AuthenticationError,
    BadRequest,
    ClientError,
    NotFound,
    PermissionDenied,
    RunFailed,
    ServerError,
    TaskTimeout,
    V6FlowError,
)
from v6flow.status import RunStatus

__version__ = "0.1.0"

__all__ = [
    "AlgorithmError",
    "AuthenticationError",
    "BadRequest",
    "ClientError",
    "NotFound",
    "PermissionDenied",
    "RunFailed",
    "RunStatus",
    "ServerError",
    "TaskTimeout",
    "V6FlowError",
    "__version__",
]
