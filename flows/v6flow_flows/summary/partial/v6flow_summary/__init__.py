"""v6flow summary statistics: the partial functions that run at each node.

The image runs ``wrap_algorithm()`` with ``PKG_NAME=v6flow_summary``; the task input
``{"method": "summary", "kwargs": {"columns": [...]}}`` calls :func:`summary` with the
node's default database loaded as a DataFrame, and ``{"method": "histogram", "kwargs":
{"edges": {col: [...]}}}`` calls :func:`histogram` (round 2 of the federated quantiles).

The node administrator sets the small-cell threshold ``k`` through the node config's
``algorithm_env: {V6FLOW_MIN_CELL_COUNT: "5"}`` (as for the crosstab, read by
:func:`v6flow.algorithm.min_cell_count_from_env`); the researcher cannot lower it. Category
counts and histogram bins with ``0 < n < k`` are returned as None, and a numeric column with
``0 < n < k`` values returns no aggregates at all (:mod:`v6flow_summary.stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from v6flow.algorithm import data, min_cell_count_from_env
from v6flow_summary.histogram import partial_histograms
from v6flow_summary.stats import partial_summary


@data(1)
def summary(df: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Aggregates of one organization's table: moments per numeric column, counts otherwise."""
    return partial_summary(df, columns, min_cell_count_from_env())


@data(1)
def histogram(df: pd.DataFrame, edges: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Histogram counts per numeric column over the given bin edges, small bins suppressed."""
    return partial_histograms(df, edges, min_cell_count_from_env())


__all__ = ["histogram", "partial_histograms", "partial_summary", "summary"]
