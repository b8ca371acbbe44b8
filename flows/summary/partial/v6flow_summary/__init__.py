"""v6flow summary statistics: the partial functions that run at each node.

The image runs ``wrap_algorithm()`` with ``PKG_NAME=v6flow_summary``; the task input
``{"method": "summary", "kwargs": {"columns": [...]}}`` calls :func:`summary` with the
node's default database loaded as a DataFrame, and ``{"method": "histogram", "kwargs":
{"edges": {col: [...]}}}`` calls :func:`histogram` (round 2 of the federated quantiles).

The node administrator sets the small-cell threshold through the node config's
``algorithm_env: {V6FLOW_MIN_CELL_COUNT: "5"}`` (as for the crosstab); the researcher cannot
lower it. Category counts and histogram bins with ``0 < n <`` threshold are returned as None.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from v6flow.algorithm import data
from v6flow_summary.histogram import partial_histograms
from v6flow_summary.stats import partial_summary

#: Env var (set by the node admin) holding the smallest count a node returns.
MIN_CELL_COUNT_ENV = "V6FLOW_MIN_CELL_COUNT"


def min_cell_count_from_env() -> int:
    """The node's threshold from ``V6FLOW_MIN_CELL_COUNT`` (0 when unset or empty).

    Raises:
        ValueError: the value is not a non-negative integer (never fall back to 0 silently).
    """
    raw = os.environ.get(MIN_CELL_COUNT_ENV, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{MIN_CELL_COUNT_ENV} must be a non-negative integer, got {raw!r}")
    return value


@data(1)
def summary(df: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Aggregates of one organization's table: moments per numeric column, counts otherwise."""
    return partial_summary(df, columns, min_cell_count_from_env())


@data(1)
def histogram(df: pd.DataFrame, edges: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Histogram counts per numeric column over the given bin edges, small bins suppressed."""
    return partial_histograms(df, edges, min_cell_count_from_env())


__all__ = ["MIN_CELL_COUNT_ENV", "histogram", "min_cell_count_from_env", "partial_histograms",
           "partial_summary", "summary"]
