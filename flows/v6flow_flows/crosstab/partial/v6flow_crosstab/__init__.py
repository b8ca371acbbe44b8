"""v6flow contingency table: the partial function that runs at each node.

The image runs ``wrap_algorithm()`` with ``PKG_NAME=v6flow_crosstab``; the task input
``{"method": "local_table", "kwargs": {"row": "sex", "column": "smoker"}}`` calls
:func:`local_table` with the node's default database loaded as a DataFrame. (Not
``crosstab``: that is the flow's name, which the same image runs as a central task.)

The node administrator sets the small-cell threshold through the node config's
``algorithm_env: {V6FLOW_MIN_CELL_COUNT: "5"}`` (read by
:func:`v6flow.algorithm.min_cell_count_from_env`); the researcher cannot lower it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from v6flow.algorithm import data, min_cell_count_from_env
from v6flow_crosstab.table import contingency


@data(1)
def local_table(df: pd.DataFrame, row: str, column: str) -> dict[str, Any]:
    """The organization's table of ``row`` by ``column``, small cells suppressed."""
    return contingency(df, row, column, min_cell_count_from_env())


__all__ = ["contingency", "local_table"]
