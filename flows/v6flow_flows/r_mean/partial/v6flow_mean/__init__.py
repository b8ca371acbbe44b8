"""The Python partial of the federated mean: the twin of the R partial (``r_partial/``).

Both answer the task input ``{"method": "sum_count", "kwargs": {"column": "age"}}`` with
``{"sum", "count", "missing", "language", "version"}``, so the flow combines them without
knowing which language ran where. A node admin's ``V6FLOW_MIN_CELL_COUNT`` (k) makes
``sum`` and ``count`` null when ``0 < count < k``, with the reason in ``suppressed``.
"""

from __future__ import annotations

import platform
from typing import Any

import pandas as pd

from v6flow.algorithm import data, is_small, min_cell_count_from_env


@data(1)
def sum_count(df: pd.DataFrame, column: str) -> dict[str, Any]:
    """Sum, count and missing count of one numeric column of the node's data.

    Raises:
        KeyError: the column is not in the data.
        TypeError: the column is not numeric.
    """
    if column not in df.columns:
        raise KeyError(f"column {column!r} is not in the data (columns: "
                       f"{', '.join(map(str, df.columns))})")
    values = df[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise TypeError(f"column {column!r} is not numeric")
    count = int(values.count())
    result: dict[str, Any] = {
        "sum": float(values.sum(skipna=True)), "count": count,
        "missing": int(values.isna().sum()), "language": "Python",
        "version": platform.python_version()}
    threshold = min_cell_count_from_env()
    if is_small(count, threshold):
        result.update(sum=None, count=None,
                      suppressed=f"fewer than {threshold} values (V6FLOW_MIN_CELL_COUNT)")
    return result


__all__ = ["sum_count"]
