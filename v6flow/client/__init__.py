"""HTTP client of the v6flow / vantage6-v4 REST API, for people (``Client``) and flows
(``AsyncClient``).

Both clients share the request shapes and answer parsing (``_ops``, I/O-free), the auth
flow (``UserAuth``: login, refresh once on 401) and the error mapping (``_errors``: every
HTTP error becomes a ``v6flow.errors.ClientError`` subclass carrying the server's ``msg``).
"""

from v6flow._http_errors import error_for_response, raise_for_response
from v6flow.client._async import AsyncClient, EventStream
from v6flow.client._auth import UserAuth
from v6flow.client._ops import DEFAULT_DATABASES
from v6flow.client._sse import Event, SSEParser
from v6flow.client._sync import Client
from v6flow.client._watch import DEFAULT_POLL_INTERVAL, LogLines

__all__ = [
    "DEFAULT_DATABASES",
    "DEFAULT_POLL_INTERVAL",
    "AsyncClient",
    "Client",
    "Event",
    "EventStream",
    "LogLines",
    "SSEParser",
    "UserAuth",
    "error_for_response",
    "raise_for_response",
]
