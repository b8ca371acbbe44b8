"""Merging the organizations' partial summaries into one federated table (pure).

Means and sample standard deviations (``ddof=1``, as pandas) are computed in exact rational
arithmetic from the nodes' counts, sums and sums of squares (their exact ``*_exact`` fraction
texts when present, else the floats), and rounded once at the end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

NUMERIC_FIELDS = ("count", "missing", "mean", "std", "min", "max")


def _exact(part: Mapping[str, Any], key: str) -> Fraction:
    """The exact value of a sum (``<key>_exact`` as a fraction text), else the float."""
    exact = part.get(f"{key}_exact")
    return Fraction(exact) if exact is not None else Fraction(part[key])


def _merge_numeric(parts: list[dict[str, Any]]) -> dict[str, Any]:
    count = sum(int(p["count"]) for p in parts)
    missing = sum(int(p["missing"]) for p in parts)
    total = sum((_exact(p, "sum") for p in parts), Fraction(0))
    total_sq = sum((_exact(p, "sum_sq") for p in parts), Fraction(0))
    mins = [p["min"] for p in parts if p.get("min") is not None]
    maxs = [p["max"] for p in parts if p.get("max") is not None]
    mean = float(total / count) if count else None
    std = None
    if count > 1:
        variance = (total_sq - total * total / count) / (count - 1)
        std = math.sqrt(float(max(variance, Fraction(0))))
    return {"count": count, "missing": missing, "mean": mean, "std": std,
            "min": min(mins) if mins else None, "max": max(maxs) if maxs else None}


def _merge_categorical(parts: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for part in parts:
        for value, n in part["counts"].items():
            counts[value] = counts.get(value, 0) + int(n)
    return {"missing": sum(int(p["missing"]) for p in parts),
            "counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}


def combine_summaries(partials: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
                      ) -> dict[str, Any]:
    """Merge partial summaries (``{org: partial}`` or a list) into the federated table.

    A column that is numeric at some organizations but only missing values there (pandas
    reads an all-empty column as float) and categorical elsewhere is merged as categorical.

    Returns:
        ``{"rows", "numeric": {col: {count, missing, mean, std, min, max}},
        "categorical": {col: {missing, counts}}, "organizations"}``.

    Raises:
        ValueError: a column holds numbers at one organization and text at another.
    """
    parts = list(partials.values()) if isinstance(partials, Mapping) else list(partials)
    numeric: dict[str, list[dict[str, Any]]] = {}
    categorical: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for name, stats in part["numeric"].items():
            numeric.setdefault(name, []).append(stats)
        for name, stats in part["categorical"].items():
            categorical.setdefault(name, []).append(stats)
    for name in [n for n in numeric if n in categorical]:
        if any(int(s["count"]) for s in numeric[name]):
            raise ValueError(f"column {name!r} is numeric at one organization, text at another")
        categorical[name].extend({"missing": s["missing"], "counts": {}}
                                 for s in numeric.pop(name))
    return {
        "organizations": len(parts),
        "rows": sum(int(p["rows"]) for p in parts),
        "numeric": {name: _merge_numeric(stats) for name, stats in numeric.items()},
        "categorical": {name: _merge_categorical(stats) for name, stats in categorical.items()},
    }


def table_rows(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The federated table as flat rows (one per numeric column, one per category)."""
    rows: list[dict[str, Any]] = [
        {"column": name, **{key: stats[key] for key in NUMERIC_FIELDS}}
        for name, stats in table["numeric"].items()
    ]
    for name, stats in table["categorical"].items():
        rows.extend({"column": f"{name}={value}", "count": n}
                    for value, n in stats["counts"].items())
        rows.append({"column": f"{name} (missing)", "count": stats["missing"]})
    return rows
