"""HTTP client of the v6flow / vantage6-v4 REST API, for people (``Client``) and flows
(``AsyncClient``).

Both clients have the same sub-clients (``organization``, ``collaboration``, ``node``,
``user``, ``role``, ``task``, ``run``, ``result``), defined once (``_resources``) over the
I/O-free operations of ``_ops``: request bodies are built with the request models of
:mod:`v6flow.schemas` and answers parsed into its response models (``TaskOut``, ``RunOut``,
...). They share the auth flow (``UserAuth``: login, refresh once on 401), the error mapping
(:mod:`v6flow._http_errors`: every HTTP error becomes a ``v6flow.errors.ClientError``
subclass carrying the server's ``msg``) and the event-stream reader (:mod:`v6flow._sse`,
also the node's).

vantage6 v4 scripts (``UserClient(host, port, path)``, ``authenticate``,
``wait_for_results``) keep working with the unmodified ``vantage6-client`` package against a
v6flow server; this client is v6flow's own, typed API.
"""

from v6flow._http_errors import error_for_response, raise_for_response
from v6flow._sse import Event, SSEParser
from v6flow.client._async import AsyncClient, EventStream
from v6flow.client._auth import UserAuth
from v6flow.client._e2e import ClientEncryption, KeySource
from v6flow.client._ops import DEFAULT_DATABASES
from v6flow.client._sync import Client
from v6flow.client._watch import DEFAULT_POLL_INTERVAL, LogLines

__all__ = [
    "DEFAULT_DATABASES",
    "DEFAULT_POLL_INTERVAL",
    "AsyncClient",
    "Client",
    "ClientEncryption",
    "Event",
    "EventStream",
    "KeySource",
    "LogLines",
    "SSEParser",
    "UserAuth",
    "error_for_response",
    "raise_for_response",
]
