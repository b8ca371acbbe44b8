"""The federated mean as a Prefect flow: an R partial and a Python partial, side by side.

The organizations in ``r_organizations`` run the R image (``r_partial/``: R from Debian, no
Python in it); every other chosen organization runs the Python image (``partial/``). Both
get the same task input, ``{"method": "sum_count", "kwargs": {"column": …}}``, and answer
with the same JSON, which :func:`v6flow_flows.r_mean.combine.combine_means` pools.

Examples:
    >>> import asyncio
    >>> from v6flow_flows.parameters import Federation, ServerParameters
    >>> from v6flow_flows.r_mean.flow import federated_mean
    >>> asyncio.run(federated_mean(column="age", r_organizations=[2], federation=Federation(
    ...     collaboration_id=1, server=ServerParameters(
    ...         url="http://127.0.0.1:7601/api", username="root", password="…"))))
    ...                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext
from pydantic import Field

from v6flow.client.federated import organization_names
from v6flow.prefect import kill_on_cancellation, run_logger
from v6flow_flows.parameters import Federation, PositiveId, resolve_connection
from v6flow_flows.r_mean import METHOD, PYTHON_MEAN_IMAGE, R_MEAN_IMAGE
from v6flow_flows.r_mean.combine import combine_means


@flow(name="federated-mean", log_prints=False, persist_result=False,
      on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
async def federated_mean(
    column: Annotated[str, Field(min_length=1)],
    r_organizations: list[PositiveId],
    federation: Federation | None = None,
    r_image: Annotated[str, Field(min_length=1)] = R_MEAN_IMAGE,
    python_image: Annotated[str, Field(min_length=1)] = PYTHON_MEAN_IMAGE,
) -> dict[str, Any]:
    """Mean of one numeric column over the collaboration, computed partly in R.

    Args:
        column: the numeric column.
        r_organizations: organizations that run the R partial (among the chosen ones).
        federation: where and how to run (``v6flow_flows.parameters.Federation``): server
            or credentials, collaboration, organizations (all members when omitted),
            databases, retries, timeout; its ``image`` is ignored (two images, below).
        r_image: the R partial's image.
        python_image: the Python partial's image.

    Returns:
        ``{"column", "mean", "sum", "count", "missing", "organizations": {id: {"name",
        "language", "count", "suppressed"}}, "suppressed": [ids]}`` (mean, sum and count
        are None when a node suppressed its values).

    Raises:
        ValueError: an organization of ``r_organizations`` is not among the chosen ones,
            or no login was given (before any task is created).
    """
    logger = run_logger()
    connection = await resolve_connection(federation, image=python_image)
    client = connection.source.get_async_client()
    try:
        names = await organization_names(client, connection.collaboration_id,
                                         connection.organizations)
    finally:
        await client.aclose()
    outside = sorted(set(r_organizations) - set(names))
    if outside:
        raise ValueError(f"r_organizations {outside} are not among the chosen organizations "
                         f"{sorted(names)}")
    in_r = sorted(set(r_organizations))
    in_python = [org for org in names if org not in set(in_r)]
    runs = [dataclasses.replace(connection, image=image).run_partial(
                METHOD, kwargs={"column": column}, organizations=orgs)
            for image, orgs in ((r_image, in_r), (python_image, in_python)) if orgs]
    partials: dict[int, Any] = {}
    for answers in await asyncio.gather(*runs):
        partials.update(answers)
    result = {"column": column, **combine_means(partials)}
    for org, entry in result["organizations"].items():
        entry["name"] = names[org]
    logger.info("mean of %s over %s rows: R at %s, Python at %s", column, result["count"],
                [names[o] for o in in_r], [names[o] for o in in_python])
    if FlowRunContext.get() is not None:
        await acreate_table_artifact(
            key="federated-mean", description=f"Federated mean of {column}",
            table=[{"organization": entry["name"], "language": entry["language"],
                    "count": entry["count"], "suppressed": entry["suppressed"] or ""}
                   for entry in result["organizations"].values()])
    return result
