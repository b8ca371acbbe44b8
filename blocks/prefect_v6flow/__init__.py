"""The v6flow Prefect collection: Blocks and the ``Federation`` flow parameter.

Registered with ``prefect block register -m prefect_v6flow`` or discovered through the
``prefect.collections`` entry point of the installed package.
"""

from .collaboration import V6flowCollaboration
from .credentials import V6flowServerCredentials
from .federation import Connection, DatabaseRequest, Federation, ServerParameters

__all__ = [
    "Connection",
    "DatabaseRequest",
    "Federation",
    "ServerParameters",
    "V6flowCollaboration",
    "V6flowServerCredentials",
]
