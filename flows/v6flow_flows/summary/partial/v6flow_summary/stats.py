"""Per-organization summary statistics of a table (pure pandas, no I/O).

Numeric columns give count, missing, sum, sum of squares, min and max; other columns give
value counts. The sums are also sent exactly (``sum_exact``/``sum_sq_exact``: fractions as
text, e.g. ``"5123/4"``): with large values and a small spread the rounded sum of squares
alone would lose the variance, and the central merge would not be exact.

Disclosure control, one rule (:func:`v6flow.algorithm.disclosure.is_small`) with the node's
minimum cell count ``k``:

- a category whose count ``n`` has ``0 < n < k`` is returned as ``None``;
- a numeric column with ``0 < n < k`` non-missing values returns none of its aggregates, only
  ``{"suppressed": True, "reason": …}``: with so few values, min and max are individual
  values, and count, sum and min/max together would undo the suppression of the histogram
  bins (e.g. the last of three values is ``sum - min - max``). Its ``missing`` is withheld too,
  since ``rows - missing`` is the count. A column with no values at all (``n = 0``) reveals
  no value and is returned as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from v6flow.algorithm.disclosure import (
    MIN_CELL_COUNT_ENV,
    check_min_cell_count,
    is_small,
    suppress_counts,
)


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


def suppressed_numeric(min_cell_count: int) -> dict[str, Any]:
    """What a node returns for a numeric column with ``0 < n < min_cell_count`` values."""
    return {"suppressed": True,
            "reason": f"fewer than {min_cell_count} non-missing values (the node's "
                      f"{MIN_CELL_COUNT_ENV})"}


def numeric_summary(series: pd.Series, min_cell_count: int = 0) -> dict[str, Any]:
    """count, missing, sum, sum_sq, min, max of one numeric column (None when empty).

    A column with ``0 < count < min_cell_count`` values gives :func:`suppressed_numeric`
    instead (see the module docstring).
    """
    present = series.dropna().to_numpy(dtype=float).tolist()
    count = len(present)
    if is_small(count, min_cell_count):
        return suppressed_numeric(min_cell_count)
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
        "counts": dict(zip((str(key) for key in counts.index),
                           suppress_counts(counts.tolist(), min_cell_count), strict=True)),
    }


def partial_summary(df: pd.DataFrame, columns: Sequence[str] | None = None,
                    min_cell_count: int = 0) -> dict[str, Any]:
    """Summarise the chosen columns (all when None) of one organization's table.

    Args:
        df: the organization's table.
        columns: columns to summarise; all when None.
        min_cell_count: the node's threshold ``k``: category counts ``0 < n < k`` are
            suppressed (None), and so are numeric columns with ``0 < n < k`` values (see the
            module docstring); 0 = none.

    Returns:
        ``{"rows", "numeric": {col: {count, missing, sum, sum_sq, sum_exact, sum_sq_exact,
        min, max} | {"suppressed": True, "reason"}}, "categorical": {col: {missing,
        counts}}, "min_cell_count"}``.

    Raises:
        KeyError: a requested column does not exist.
        ValueError: the threshold is negative.
    """
    check_min_cell_count(min_cell_count)
    chosen = list(columns) if columns is not None else [str(c) for c in df.columns]
    missing = [c for c in chosen if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the data: {missing}")
    numeric: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for name in chosen:
        series = df[name]
        if is_numeric(series):
            numeric[name] = numeric_summary(series, min_cell_count)
        else:
            categorical[name] = categorical_summary(series, min_cell_count)
    return {"rows": len(df), "numeric": numeric, "categorical": categorical,
            "min_cell_count": min_cell_count}
