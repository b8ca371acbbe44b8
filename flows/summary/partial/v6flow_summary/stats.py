"""Per-organization summary statistics of a table (pure pandas, no I/O).

Numeric columns give count, missing, sum, sum of squares, min and max; other columns give
value counts. The sums are also sent exactly (``sum_exact``/``sum_sq_exact``: fractions as
text, e.g. ``"5123/4"``): with large values and a small spread the rounded sum of squares
alone would lose the variance, and the central merge would not be exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd


def exact_sums(values: Sequence[float]) -> tuple[Fraction, Fraction]:
    """The exact sum and sum of squares of floats, as fractions (no rounding at all).

    Every float is ``n / 2**k``; both sums are taken over integers scaled to the largest
    ``k``, so they are exact whatever the magnitudes.
    """
    ratios = [float(v).as_integer_ratio() for v in values]
    if not ratios:
        return Fraction(0), Fraction(0)
    shift = max(den.bit_length() - 1 for _, den in ratios)  # denominators are powers of 2
    total = 0
    total_sq = 0
    for num, den in ratios:
        scale = shift - (den.bit_length() - 1)
        total += num << scale
        total_sq += (num * num) << (2 * scale)
    return Fraction(total, 1 << shift), Fraction(total_sq, 1 << (2 * shift))


def _number(value: Any) -> int | float:
    item = value.item() if hasattr(value, "item") else value
    return int(item) if isinstance(item, (bool, np.bool_)) else item


def is_numeric(series: pd.Series) -> bool:
    """Numeric columns are summarised with moments; booleans count as categories."""
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def numeric_summary(series: pd.Series) -> dict[str, Any]:
    """count, missing, sum, sum_sq, min, max of one numeric column (None when empty)."""
    present = series.dropna().to_numpy(dtype=float).tolist()
    count = len(present)
    total, total_sq = exact_sums(present)
    return {
        "count": count,
        "missing": int(series.isna().sum()),
        "sum": float(total),
        "sum_sq": float(total_sq),
        "sum_exact": str(total),
        "sum_sq_exact": str(total_sq),
        "min": _number(series.min()) if count else None,
        "max": _number(series.max()) if count else None,
    }


def categorical_summary(series: pd.Series, min_cell_count: int = 0) -> dict[str, Any]:
    """missing and value counts (keys as text) of one categorical column.

    A count with ``0 < n < min_cell_count`` is returned as ``None`` (small-cell suppression).
    """
    counts = series.dropna().astype(str).value_counts()
    return {
        "missing": int(series.isna().sum()),
        "counts": {str(key): (None if 0 < int(value) < min_cell_count else int(value))
                   for key, value in counts.items()},
    }


def partial_summary(df: pd.DataFrame, columns: Sequence[str] | None = None,
                    min_cell_count: int = 0) -> dict[str, Any]:
    """Summarise the chosen columns (all when None) of one organization's table.

    Args:
        df: the organization's table.
        columns: columns to summarise; all when None.
        min_cell_count: category counts ``0 < n <`` this are suppressed (None); 0 = none.

    Raises:
        KeyError: a requested column does not exist.
        ValueError: the threshold is negative.
    """
    if min_cell_count < 0:
        raise ValueError("min_cell_count must be >= 0")
    chosen = list(columns) if columns is not None else [str(c) for c in df.columns]
    missing = [c for c in chosen if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the data: {missing}")
    numeric: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for name in chosen:
        series = df[name]
        if is_numeric(series):
            numeric[name] = numeric_summary(series)
        else:
            categorical[name] = categorical_summary(series, min_cell_count)
    return {"rows": len(df), "numeric": numeric, "categorical": categorical,
            "min_cell_count": min_cell_count}
