"""Prefect adapter of v6flow: fan a partial function out to organizations as task runs.

Examples:
    >>> from prefect import flow
    >>> from v6flow.prefect import run_partial
    >>> @flow
    ... async def mean_age(credentials):
    ...     return await run_partial(credentials, 1, "summary", image="v6flow/summary:0.1.0")
"""

from v6flow.prefect.logging import log_forwarder, run_logger
from v6flow.prefect.tasks import AsyncClientFactory, ClientSource, run_on_organization, run_partial

__all__ = [
    "AsyncClientFactory",
    "ClientSource",
    "log_forwarder",
    "run_logger",
    "run_on_organization",
    "run_partial",
]
