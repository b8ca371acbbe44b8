"""Per-organization histograms of numeric columns over centrally fixed bin edges (pure).

Round 2 of the federated quantiles: the flow sends the same bin edges to every node; each
node counts its values per bin. Bin ``i`` is ``[edges[i], edges[i+1])``, the last bin is
closed on the right. Positive counts below the node's minimum cell count ``k`` are returned
as ``None`` (the small count never leaves the node; :mod:`v6flow.algorithm.disclosure`).

A column with ``0 < n < k`` values, whose summary the node withholds (:mod:`.stats`), returns
every bin as ``None``, empty bins included: the flow never asks for it, but a hand-made task
with narrow bins would otherwise locate those few values by where the ``None`` bins are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from v6flow.algorithm.disclosure import check_min_cell_count, is_small, suppress_counts


def _checked_edges(name: str, edges: Sequence[float]) -> np.ndarray:
    array = np.asarray([float(e) for e in edges], dtype=float)
    if array.size < 2 or not all(math.isfinite(e) for e in array.tolist()):
        raise ValueError(f"column {name!r}: need at least 2 finite bin edges")
    if np.any(np.diff(array) < 0):
        raise ValueError(f"column {name!r}: bin edges must not decrease")
    return array


def bin_counts(series: pd.Series, edges: Sequence[float]) -> list[int]:
    """Counts of the present values of ``series`` per bin (values outside go to the end bins).

    Raises:
        ValueError: the edges are invalid, or the column holds non-numeric values.
    """
    array = _checked_edges(str(series.name), edges)
    present = series.dropna()
    bins = array.size - 1
    if present.empty:
        return [0] * bins
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        raise ValueError(f"column {series.name!r} is not numeric")
    values = present.to_numpy(dtype=float)
    index = np.clip(np.searchsorted(array, values, side="right") - 1, 0, bins - 1)
    return [int(n) for n in np.bincount(index, minlength=bins)]


def partial_histograms(df: pd.DataFrame, edges: Mapping[str, Sequence[float]],
                       min_cell_count: int = 0) -> dict[str, Any]:
    """Histogram counts of each column in ``edges`` over its bin edges.

    Returns:
        ``{"histograms": {col: {"counts": [int | None], "suppressed": int}},
        "min_cell_count"}``.

    Raises:
        KeyError: a column does not exist.
        ValueError: invalid edges, a non-numeric column, or a negative threshold.
    """
    check_min_cell_count(min_cell_count)
    absent = [c for c in edges if c not in df.columns]
    if absent:
        raise KeyError(f"columns not in the data: {absent}")
    histograms: dict[str, Any] = {}
    for name, column_edges in edges.items():
        raw = bin_counts(df[name], column_edges)
        counts = ([None] * len(raw) if is_small(sum(raw), min_cell_count)
                  else suppress_counts(raw, min_cell_count))
        histograms[name] = {"counts": counts,
                            "suppressed": sum(1 for n in counts if n is None)}
    return {"histograms": histograms, "min_cell_count": min_cell_count}
