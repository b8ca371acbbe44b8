"""v6flow summary statistics: the partial function that runs at each node.

The image runs ``wrap_algorithm()`` with ``PKG_NAME=v6flow_summary``; the task input
``{"method": "summary", "kwargs": {"columns": [...]}}`` calls :func:`summary` with the
node's default database loaded as a DataFrame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from v6flow.algorithm import data
from v6flow_summary.stats import partial_summary


@data(1)
def summary(df: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Aggregates of one organization's table: moments per numeric column, counts otherwise."""
    return partial_summary(df, columns)


__all__ = ["partial_summary", "summary"]
