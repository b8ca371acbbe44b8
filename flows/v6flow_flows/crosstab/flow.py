"""The contingency table central function as a Prefect flow.

Each organization counts its (row, column) level pairs (``v6flow_crosstab.local_table`` in the
``v6flow/crosstab`` image) and suppresses positive counts below the threshold its node admin
configured (``V6FLOW_MIN_CELL_COUNT``); the flow pools the tables and tests independence.

Examples:
    >>> import asyncio
    >>> from v6flow_flows.crosstab.flow import crosstab
    >>> from v6flow_flows.parameters import Federation, ServerParameters
    >>> asyncio.run(crosstab(row="sex", column="smoker", federation=Federation(
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
from v6flow_flows.crosstab import CROSSTAB_IMAGE
from v6flow_flows.crosstab.combine import combine_tables, table_rows
from v6flow_flows.parameters import Federation, resolve_connection

ColumnName = Annotated[str, Field(min_length=1)]


@flow(name="crosstab", log_prints=False, persist_result=False,
      on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
async def crosstab(
    row: ColumnName,
    column: ColumnName,
    federation: Federation | None = None,
) -> dict[str, Any]:
    """Federated contingency table of two categorical columns with a chi-square test.

    Args:
        row: column whose levels are the table's rows.
        column: column whose levels are the table's columns.
        federation: where and how to run (login or Blocks, collaboration, organizations,
            image (default ``v6flow/crosstab``), databases, retries, timeout).

    Returns:
        ``{"row", "column", "row_levels", "column_levels", "counts" (None = suppressed at
        some organization), "suppressed_cells", "complete", "n", "row_totals",
        "column_totals", "chi_square": {"statistic", "dof", "p_value", "min_expected"} | None,
        "organizations"}``; the test is None when a cell is suppressed.

    Raises:
        ValueError: ``row`` equals ``column``, or no login was given.
    """
    if row == column:
        raise ValueError("row and column must differ")
    logger = run_logger()
    connection = await resolve_connection(federation, image=CROSSTAB_IMAGE)
    partials = await connection.run_partial("local_table", kwargs={"row": row, "column": column})
    table = combine_tables(partials, row=row, column=column)
    if table["complete"]:
        logger.info("crosstab %s x %s of %d rows from %d organizations", row, column,
                    table["n"], table["organizations"])
        if table["chi_square"]["min_expected"] < 5:
            logger.warning("an expected count is below 5: the chi-square p-value is rough")
    else:
        logger.warning("crosstab %s x %s: %d cell(s) suppressed by the nodes' minimum cell "
                       "count; no chi-square test", row, column, len(table["suppressed_cells"]))
    if FlowRunContext.get() is not None:  # not when the logic runs alone (``.fn()``)
        await acreate_table_artifact(key="crosstab", table=table_rows(table),
                                     description=f"Federated crosstab {row} x {column}")
    return table
