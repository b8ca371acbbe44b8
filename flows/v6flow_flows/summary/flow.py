"""The summary statistics central function as a Prefect flow.

Each organization computes exact partial aggregates (``v6flow_summary.summary`` in the
``v6flow/summary`` image); the flow merges them into the federated table. When quantiles are
asked for, one more round (``v6flow_summary.histogram``) counts each node's values in fixed
equal-width bins over the global [min, max]; the pooled counts give the quantiles within one
bin width (:mod:`v6flow_flows.summary.quantiles`).

Examples:
    >>> import asyncio
    >>> from v6flow_flows.parameters import Federation, ServerParameters
    >>> from v6flow_flows.summary.flow import summary_statistics
    >>> asyncio.run(summary_statistics(federation=Federation(
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
from v6flow_flows.summary import SUMMARY_IMAGE
from v6flow_flows.summary.combine import combine_summaries, table_rows
from v6flow_flows.summary.quantiles import (
    DEFAULT_BINS,
    DEFAULT_QUANTILES,
    bin_edges,
    combine_histograms,
    validate_bins,
    validate_quantiles,
)

Probability = Annotated[float, Field(gt=0, lt=1)]


@flow(name="summary-statistics", log_prints=False, persist_result=False,
      on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
async def summary_statistics(
    federation: Federation | None = None,
    columns: list[Annotated[str, Field(min_length=1)]] | None = None,
    quantiles: list[Probability] = list(DEFAULT_QUANTILES),  # noqa: B006 - never mutated
    bins: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_BINS,
) -> dict[str, Any]:
    """Federated summary statistics of a collaboration's tables.

    Args:
        federation: where and how to run (login or Blocks, collaboration, organizations,
            image (default ``v6flow/summary``), databases, retries, timeout).
        columns: columns to summarise; all when omitted.
        quantiles: probabilities in (0, 1) of the numeric columns' quantiles; ``[]`` skips
            the second (histogram) round.
        bins: equal-width histogram bins over each column's global [min, max]; the
            quantile error is at most one bin width.

    Returns:
        ``{"rows", "organizations", "numeric": {col: {count, missing, mean, std, min, max}
        (all None when a node suppressed the column)}, "categorical": {col: {missing, counts
        (None = suppressed)}}, "suppressed": {"categories": {col: {value: [orgs]}},
        "numeric": {col: [{organization, reason}]}, "histogram_bins": {col: [{bin, low, high,
        organizations}]}}, "quantiles": {col: {"estimates": {str(q): value | None},
        "bin_width", "bins", "suppressed_bins"}}}``. A node suppresses a numeric column it
        holds fewer than its ``V6FLOW_MIN_CELL_COUNT`` values of (but at least one).

    Raises:
        ValueError: a quantile is outside (0, 1), ``bins`` < 1, or no login was given
            (before any task is created).
    """
    probabilities = validate_quantiles(quantiles)
    bins = validate_bins(bins)
    logger = run_logger()
    connection = await resolve_connection(federation, image=SUMMARY_IMAGE)
    kwargs: dict[str, Any] = {} if columns is None else {"columns": list(columns)}
    partials = await connection.run_partial("summary", kwargs=kwargs)
    table = combine_summaries(partials)
    table["quantiles"] = {}
    table["suppressed"]["histogram_bins"] = {}
    edges = bin_edges(table["numeric"], bins) if probabilities else {}
    if edges:
        histograms = await connection.run_partial("histogram", kwargs={"edges": edges},
                                                  organizations=list(partials))
        table["quantiles"] = combine_histograms(histograms, edges, probabilities)
        table["suppressed"]["histogram_bins"] = {
            name: q["suppressed_bins"] for name, q in table["quantiles"].items()
            if q["suppressed_bins"]}
    suppressed = table["suppressed"]
    if suppressed["categories"] or suppressed["numeric"] or suppressed["histogram_bins"]:
        logger.warning("small cells suppressed by the nodes: numeric columns %s (their pooled "
                       "statistics are None), categories of %s, histogram bins of %s",
                       sorted(suppressed["numeric"]), sorted(suppressed["categories"]),
                       sorted(suppressed["histogram_bins"]))
    logger.info("summary of %d rows from %d organizations", table["rows"],
                table["organizations"])
    if FlowRunContext.get() is not None:  # not when the logic runs alone (``.fn()``)
        await acreate_table_artifact(key="summary-statistics", table=table_rows(table),
                                     description="Federated summary statistics")
    return table
