"""The Kaplan-Meier central function as a Prefect flow, with the log-rank test.

Each organization counts events, censorings and its risk set per distinct time
(``v6flow_survival.risk_counts`` in the ``v6flow/survival`` image), per level of the group
column when one is given; the flow pools them into Kaplan-Meier curves (Greenwood standard
errors) and tests equality of the curves across the groups, or across the organizations.

Examples:
    >>> import asyncio
    >>> from v6flow_flows.survival.flow import kaplan_meier
    >>> from v6flow_flows.parameters import Federation, ServerParameters
    >>> asyncio.run(kaplan_meier(group="treated", federation=Federation(
    ...     collaboration_id=1, server=ServerParameters(
    ...         url="http://127.0.0.1:7601/api", username="root", password="…"))))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext
from pydantic import Field

from v6flow.prefect import kill_on_cancellation, run_logger
from v6flow_flows.parameters import Federation, resolve_connection
from v6flow_flows.survival import SURVIVAL_IMAGE
from v6flow_flows.survival.combine import combine_survival, table_rows

ColumnName = Annotated[str, Field(min_length=1)]


@flow(name="kaplan-meier", log_prints=False, persist_result=False,
      on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
async def kaplan_meier(
    federation: Federation | None = None,
    time: ColumnName = "time",
    event: ColumnName = "event",
    group: ColumnName | None = None,
) -> dict[str, Any]:
    """Federated Kaplan-Meier curves and the log-rank test.

    Rows missing the time, the event indicator or the group are left out at each node.

    Args:
        federation: where and how to run (login or Blocks, collaboration, organizations,
            image (default ``v6flow/survival``), databases, retries, timeout).
        time: follow-up time column (non-negative).
        event: event indicator column (1 = event, 0 = censored).
        group: column whose levels are compared; when omitted the organizations are.

    Returns:
        ``{"overall": curve, "groups": [{"group", "curve"}], "log_rank": {"statistic",
        "dof", "p_value", "observed", "expected"} | None, "organizations", "group_by"}``;
        a curve is ``{"n", "events_total", "times", "at_risk", "events", "censored",
        "survival", "std_error", "median"}``. ``group_by`` is the column or
        ``"organization"`` (then the group labels are organization ids).

    Raises:
        ValueError: ``group`` is the time or event column, or no login was given.
    """
    if group is not None and group in (time, event):
        raise ValueError("the group column cannot be the time or event column")
    if time == event:
        raise ValueError("time and event must be different columns")
    logger = run_logger()
    connection = await resolve_connection(federation, image=SURVIVAL_IMAGE)
    kwargs: dict[str, Any] = {"time": time, "event": event, "group": group}
    partials = await connection.run_partial("risk_counts", kwargs=kwargs)
    result = combine_survival(partials, by_organization=group is None)
    result["group_by"] = group if group is not None else "organization"
    test = result["log_rank"]
    logger.info("Kaplan-Meier of %d rows (%d events) in %d groups%s",
                result["overall"]["n"], result["overall"]["events_total"],
                len(result["groups"]),
                f"; log-rank {test['statistic']:.4g} (p={test['p_value']:.3g})" if test else "")
    if FlowRunContext.get() is not None:  # not when the logic runs alone (``.fn()``)
        await acreate_table_artifact(key="kaplan-meier", table=table_rows(result),
                                     description="Federated Kaplan-Meier by "
                                                 f"{result['group_by']}")
    return result
