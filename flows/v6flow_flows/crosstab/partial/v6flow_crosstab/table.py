"""One organization's contingency table with small-cell suppression (pure pandas, no I/O).

A cell whose count is positive but below the node's threshold is returned as ``None``: the
count never leaves the node (the rule of :mod:`v6flow.algorithm.disclosure`). No margins or
row totals are returned either, so a suppressed cell cannot be recovered by subtraction from
this table alone. Zero cells are not suppressed (a level combination absent at a node is zero
implicitly anyway).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from v6flow.algorithm.disclosure import check_min_cell_count, suppress_counts
from v6flow.algorithm.levels import json_level, level_sort_key


def contingency(df: pd.DataFrame, row: str, column: str, min_cell_count: int = 0
                ) -> dict[str, Any]:
    """Counts of each (row level, column level) pair; rows missing either value are skipped.

    Args:
        df: the organization's table.
        row: column whose levels are the table's rows.
        column: column whose levels are the table's columns.
        min_cell_count: positive counts below this are suppressed (``None``); 0 = none.

    Returns:
        ``{"row_levels", "column_levels", "counts" (row-major, None = suppressed),
        "min_cell_count", "suppressed"}`` (the number of suppressed cells).

    Raises:
        KeyError: a column is not in the data.
        ValueError: ``row`` equals ``column`` or the threshold is negative.
    """
    missing = [c for c in (row, column) if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the data: {missing}")
    if row == column:
        raise ValueError("row and column must differ")
    check_min_cell_count(min_cell_count)
    pairs = df[[row, column]].dropna()
    grouped = pairs.groupby([row, column]).size()
    counts: dict[tuple[Any, Any], int] = {
        (json_level(r), json_level(c)): int(n) for (r, c), n in grouped.items()}
    row_levels = sorted({r for r, _ in counts}, key=level_sort_key)
    column_levels = sorted({c for _, c in counts}, key=level_sort_key)
    matrix = [suppress_counts([counts.get((r, c), 0) for c in column_levels], min_cell_count)
              for r in row_levels]
    suppressed = sum(line.count(None) for line in matrix)
    return {"row_levels": row_levels, "column_levels": column_levels, "counts": matrix,
            "min_cell_count": min_cell_count, "suppressed": suppressed}
