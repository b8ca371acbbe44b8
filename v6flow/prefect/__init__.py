"""Prefect adapter of v6flow: fan a partial function out to organizations as task runs.

Examples:
    >>> from prefect import flow
    >>> from v6flow.prefect import kill_on_cancellation, run_partial
    >>> @flow(on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
    ... async def mean_age(credentials):
    ...     return await run_partial(credentials, 1, "summary", image="v6flow/summary:0.1.0",
    ...                              min_responses=2)
"""

from v6flow.client.federated import FanOutTracker, OrganizationOutcome
from v6flow.prefect.caching import PartialCachePolicy
from v6flow.prefect.cancellation import kill_on_cancellation
from v6flow.prefect.events import V6flowEvent
from v6flow.prefect.logging import log_forwarder, run_logger
from v6flow.prefect.tasks import AsyncClientFactory, ClientSource, run_on_organization, run_partial

__all__ = [
    "AsyncClientFactory",
    "ClientSource",
    "FanOutTracker",
    "OrganizationOutcome",
    "PartialCachePolicy",
    "V6flowEvent",
    "kill_on_cancellation",
    "log_forwarder",
    "run_logger",
    "run_on_organization",
    "run_partial",
]
