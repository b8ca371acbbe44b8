"""Merging the organizations' partial summaries into one federated table (pure).

Means and sample standard deviations (``ddof=1``, as pandas) are computed in exact rational
arithmetic from the nodes' counts, sums and sums of squares (their exact ``*_exact`` fraction
texts when present, else the floats), and rounded once at the end.

A category count that a node suppressed (small cell, returned as ``None``) makes the pooled
count ``None`` too (only a lower bound would be known, and it would hint at the small count);
``suppressed["categories"]`` lists them with the organizations that suppressed them.

A numeric column that a node suppressed (it has ``0 < n < k`` values there, for that node's
minimum cell count ``k``; the node sends ``{"suppressed": True, "reason"}`` instead of its
aggregates) has no pooled statistics: count, missing, mean, std, min and max are all ``None``,
never the statistics of the other organizations alone passed off as the federation's.
``suppressed["numeric"]`` lists such columns with each suppressing organization and its
reason. The summary flow then asks no quantiles of that column either (no ``count``).
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


def is_suppressed(part: Mapping[str, Any]) -> bool:
    """Whether a node's numeric partial is a suppression mark instead of aggregates."""
    return bool(part.get("suppressed"))


def _merge_numeric(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if any(is_suppressed(p) for p in parts):
        return dict.fromkeys(NUMERIC_FIELDS)
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


def _merge_categorical(parts: list[tuple[Any, dict[str, Any]]]
                       ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    counts: dict[str, int] = {}
    hidden: dict[str, list[Any]] = {}
    for org, part in parts:
        for value, n in part["counts"].items():
            if n is None:
                hidden.setdefault(value, []).append(org)
                counts.setdefault(value, 0)
            else:
                counts[value] = counts.get(value, 0) + int(n)
    known = sorted(((v, n) for v, n in counts.items() if v not in hidden),
                   key=lambda kv: (-kv[1], kv[0]))
    merged: dict[str, int | None] = dict(known)
    merged.update((value, None) for value in sorted(hidden))
    return ({"missing": sum(int(p["missing"]) for _, p in parts), "counts": merged},
            {value: hidden[value] for value in sorted(hidden)})


def combine_summaries(partials: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
                      ) -> dict[str, Any]:
    """Merge partial summaries (``{org: partial}`` or a list) into the federated table.

    A column that is numeric at some organizations but only missing values there (pandas
    reads an all-empty column as float) and categorical elsewhere is merged as categorical.

    Returns:
        ``{"rows", "numeric": {col: {count, missing, mean, std, min, max}},
        "categorical": {col: {missing, counts}}, "organizations",
        "suppressed": {"categories": {col: {value: [organizations]}},
        "numeric": {col: [{"organization", "reason"}]}}}``; a suppressed category's count is
        ``None`` (listed after the known counts), a suppressed numeric column's statistics
        are all ``None``.

    Raises:
        ValueError: a column holds numbers at one organization and text at another.
    """
    items = list(partials.items()) if isinstance(partials, Mapping) else list(
        enumerate(partials))
    numeric: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    categorical: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for org, part in items:
        for name, stats in part["numeric"].items():
            numeric.setdefault(name, []).append((org, stats))
        for name, stats in part["categorical"].items():
            categorical.setdefault(name, []).append((org, stats))
    for name in [n for n in numeric if n in categorical]:
        if any(is_suppressed(s) or int(s["count"]) for _, s in numeric[name]):
            raise ValueError(f"column {name!r} is numeric at one organization, text at another")
        categorical[name].extend((org, {"missing": s["missing"], "counts": {}})
                                 for org, s in numeric.pop(name))
    merged = {name: _merge_categorical(stats) for name, stats in categorical.items()}
    return {
        "organizations": len(items),
        "rows": sum(int(p["rows"]) for _, p in items),
        "numeric": {name: _merge_numeric([s for _, s in stats])
                    for name, stats in numeric.items()},
        "categorical": {name: table for name, (table, _) in merged.items()},
        "suppressed": {
            "categories": {name: hidden for name, (_, hidden) in merged.items() if hidden},
            "numeric": {name: [{"organization": org, "reason": str(s.get("reason", ""))}
                               for org, s in stats if is_suppressed(s)]
                        for name, stats in numeric.items()
                        if any(is_suppressed(s) for _, s in stats)},
        },
    }


def table_rows(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The federated table as flat rows (one per numeric column, one per category)."""
    hidden = table.get("suppressed", {}).get("numeric", {})
    rows: list[dict[str, Any]] = [
        {"column": name, **{key: stats[key] for key in NUMERIC_FIELDS},
         **({"count": "suppressed"} if name in hidden else {})}
        for name, stats in table["numeric"].items()
    ]
    quantiles = table.get("quantiles") or {}
    for row in rows:
        for q, value in (quantiles.get(row["column"]) or {}).get("estimates", {}).items():
            row[f"q{q}"] = value
    for name, stats in table["categorical"].items():
        rows.extend({"column": f"{name}={value}", "count": "suppressed" if n is None else n}
                    for value, n in stats["counts"].items())
        rows.append({"column": f"{name} (missing)", "count": stats["missing"]})
    return rows
