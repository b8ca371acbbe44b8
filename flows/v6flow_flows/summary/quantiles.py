"""Federated quantiles by the histogram method (pure).

Round 1 (the summary) gives each numeric column's global min and max; round 2 sends the same
equal-width bin edges over ``[min, max]`` to every node, which returns its counts per bin.
The pooled cumulative counts locate the bin of each order statistic; the value is
interpolated linearly inside that bin. A quantile is pandas' ``linear`` one: the order
statistics at ranks ``floor(h)`` and ``floor(h)+1`` (``h = (n-1) q``) mixed by the fraction
of ``h``. Each estimated order statistic lies in the bin that holds the true one, so
``|estimate - exact| <= bin_width``.

A bin suppressed at any node (small cell) makes the pooled cumulative counts unknown: the
column's quantiles are then ``None`` and its suppressed bins are listed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_QUANTILES = (0.25, 0.5, 0.75)
DEFAULT_BINS = 1000


def validate_quantiles(quantiles: Iterable[float]) -> list[float]:
    """The quantile probabilities as floats, each strictly between 0 and 1.

    Raises:
        ValueError: a value is not a number in (0, 1) (the message names ``quantiles``).
    """
    checked: list[float] = []
    for q in quantiles:
        value = float(q)
        if not (math.isfinite(value) and 0.0 < value < 1.0):
            raise ValueError(f"quantiles: each value must be in (0, 1), got {q!r}")
        checked.append(value)
    return checked


def validate_bins(bins: int) -> int:
    """The number of histogram bins (a positive integer).

    Raises:
        ValueError: ``bins`` is not a positive integer (the message names ``bins``).
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: must be a positive integer, got {bins!r}")
    return bins


def bin_edges(numeric: Mapping[str, Mapping[str, Any]], bins: int = DEFAULT_BINS
              ) -> dict[str, list[float]]:
    """Equal-width edges over ``[min, max]`` of each numeric column that has values.

    A constant column gets the single bin ``[min, min]`` (width 0).
    """
    edges: dict[str, list[float]] = {}
    for name, stats in numeric.items():
        low, high = stats.get("min"), stats.get("max")
        if not stats.get("count") or low is None or high is None:
            continue
        low, high = float(low), float(high)
        if high <= low:
            edges[name] = [low, low]
            continue
        width = (high - low) / bins
        edges[name] = [low + i * width for i in range(bins)] + [high]
    return edges


def _order_statistic(k: int, counts: Sequence[int], edges: Sequence[float]) -> float:
    """The value of rank ``k`` (0-based), interpolated inside the bin that holds it."""
    before = 0
    for i, n in enumerate(counts):
        if n and k < before + n:
            return edges[i] + (k - before + 0.5) / n * (edges[i + 1] - edges[i])
        before += n
    raise ValueError(f"rank {k} beyond the {before} counted values")


def histogram_quantiles(counts: Sequence[int], edges: Sequence[float],
                        quantiles: Sequence[float]) -> list[float | None]:
    """Quantile estimates from pooled bin counts (None for every q when there are no values)."""
    total = sum(counts)
    if total == 0:
        return [None for _ in quantiles]
    results: list[float | None] = []
    for q in quantiles:
        h = (total - 1) * q
        low = math.floor(h)
        high = min(low + 1, total - 1)
        lo_value = _order_statistic(low, counts, edges)
        hi_value = _order_statistic(high, counts, edges)
        results.append(lo_value + (h - low) * (hi_value - lo_value))
    return results


def combine_histograms(partials: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
                       edges: Mapping[str, Sequence[float]],
                       quantiles: Sequence[float]) -> dict[str, Any]:
    """Pool the organizations' histograms and estimate the quantiles of each column.

    Returns:
        ``{col: {"estimates": {str(q): value | None}, "bin_width", "bins",
        "suppressed_bins": [{"bin", "low", "high", "organizations"}]}}``.

    Raises:
        ValueError: a histogram's length does not match its edges.
    """
    items = list(partials.items()) if isinstance(partials, Mapping) else list(
        enumerate(partials))
    result: dict[str, Any] = {}
    for name, column_edges in edges.items():
        bins = len(column_edges) - 1
        pooled = [0] * bins
        hidden: dict[int, list[Any]] = {}
        for org, part in items:
            hist = part["histograms"].get(name)
            if hist is None:
                continue
            if len(hist["counts"]) != bins:
                raise ValueError(f"column {name!r}: {len(hist['counts'])} bins, expected {bins}")
            for i, n in enumerate(hist["counts"]):
                if n is None:
                    hidden.setdefault(i, []).append(org)
                else:
                    pooled[i] += int(n)
        estimates = ([None] * len(quantiles) if hidden
                     else histogram_quantiles(pooled, column_edges, quantiles))
        result[name] = {
            "estimates": {str(q): v for q, v in zip(quantiles, estimates, strict=True)},
            "bin_width": max((column_edges[i + 1] - column_edges[i] for i in range(bins)),
                             default=0.0),
            "bins": bins,
            "suppressed_bins": [{"bin": i, "low": column_edges[i], "high": column_edges[i + 1],
                                 "organizations": orgs} for i, orgs in sorted(hidden.items())],
        }
    return result
