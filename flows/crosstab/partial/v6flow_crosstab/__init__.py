"""v6flow contingency table: the partial function that runs at each node.

The image runs ``wrap_algorithm()`` with ``PKG_NAME=v6flow_crosstab``; the task input
``{"method": "crosstab", "kwargs": {"row": "sex", "column": "smoker"}}`` calls
:func:`crosstab` with the node's default database loaded as a DataFrame.

The node administrator sets the small-cell threshold through the node config's
``algorithm_env: {V6FLOW_MIN_CELL_COUNT: "5"}``; the researcher cannot lower it.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from v6flow.algorithm import data
from v6flow_crosstab.table import contingency

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
def crosstab(df: pd.DataFrame, row: str, column: str) -> dict[str, Any]:
    """The organization's table of ``row`` by ``column``, small cells suppressed."""
    return contingency(df, row, column, min_cell_count_from_env())


__all__ = ["MIN_CELL_COUNT_ENV", "contingency", "crosstab", "min_cell_count_from_env"]
