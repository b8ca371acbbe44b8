"""Pooling the organizations' contingency tables and testing independence (pure).

A pooled cell is the sum of the organizations' counts; when any organization suppressed it
the pooled cell is ``None`` (unknown: only a lower bound is known, and that would hint at the
small count), listed in ``suppressed_cells``, and totals and the chi-square test that need it
are ``None`` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from v6flow_flows._common import chi2_sf, level_key, normalise_level


def _parts(partials: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
           ) -> list[tuple[Any, Mapping[str, Any]]]:
    if isinstance(partials, Mapping):
        return list(partials.items())
    return list(enumerate(partials))


def chi_square(counts: list[list[int]]) -> dict[str, Any]:
    """Pearson's chi-square test of independence (no continuity correction).

    Returns:
        ``{"statistic", "dof", "p_value", "min_expected"}``; ``dof`` is ``(r-1)(c-1)``, the
        p-value the chi-square upper tail (1.0 for a table with one row or one column);
        ``min_expected`` is the smallest expected count (the approximation is poor below 5).

    Raises:
        ValueError: the table is empty.
    """
    rows = [sum(line) for line in counts]
    columns = [sum(col) for col in zip(*counts, strict=True)] if counts else []
    total = sum(rows)
    if total == 0:
        raise ValueError("the table holds no observations")
    statistic = 0.0
    min_expected = float("inf")
    for i, line in enumerate(counts):
        for j, observed in enumerate(line):
            expected = rows[i] * columns[j] / total
            min_expected = min(min_expected, expected)
            if expected > 0:
                statistic += (observed - expected) ** 2 / expected
    dof = (len(rows) - 1) * (len(columns) - 1)
    return {"statistic": statistic, "dof": dof, "p_value": chi2_sf(statistic, dof),
            "min_expected": min_expected}


def combine_tables(partials: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
                   row: str = "row", column: str = "column") -> dict[str, Any]:
    """Pool partial tables (``{org: partial}`` or a list) into one table with a chi-square test.

    Returns:
        ``{"row", "column", "row_levels", "column_levels", "counts" (None = suppressed),
        "suppressed_cells": [{"row", "column", "organizations"}], "complete", "n",
        "row_totals", "column_totals", "chi_square": {"statistic", "dof", "p_value"} | None,
        "organizations"}``. ``n`` and a total are None when a cell they need is suppressed.
    """
    parts = _parts(partials)
    cells: dict[tuple[Any, Any], int] = {}
    hidden: dict[tuple[Any, Any], list[Any]] = {}
    for org, part in parts:
        row_levels = [normalise_level(v) for v in part["row_levels"]]
        column_levels = [normalise_level(v) for v in part["column_levels"]]
        for r, line in zip(row_levels, part["counts"], strict=True):
            for c, n in zip(column_levels, line, strict=True):
                cells.setdefault((r, c), 0)
                if n is None:
                    hidden.setdefault((r, c), []).append(org)
                else:
                    cells[(r, c)] += int(n)
    row_levels = sorted({r for r, _ in cells}, key=level_key)
    column_levels = sorted({c for _, c in cells}, key=level_key)
    counts: list[list[int | None]] = [
        [None if (r, c) in hidden else cells.get((r, c), 0) for c in column_levels]
        for r in row_levels]
    complete = not hidden

    def total(line: list[int | None]) -> int | None:
        return None if any(n is None for n in line) else sum(n for n in line if n is not None)

    row_totals = [total(line) for line in counts]
    column_totals = [total(list(col)) for col in zip(*counts, strict=True)] if counts else []
    known = [[n for n in line if n is not None] for line in counts]
    test = chi_square(known) if complete and counts else None
    return {
        "row": row, "column": column,
        "row_levels": row_levels, "column_levels": column_levels, "counts": counts,
        "suppressed_cells": [{"row": r, "column": c, "organizations": orgs}
                             for (r, c), orgs in sorted(
                                 hidden.items(), key=lambda kv: (level_key(kv[0][0]),
                                                                 level_key(kv[0][1])))],
        "complete": complete,
        "n": sum(n for n in row_totals if n is not None) if complete else None,
        "row_totals": row_totals, "column_totals": column_totals,
        "chi_square": test, "organizations": len(parts),
    }


def table_rows(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pooled table as flat rows for an artifact (``"suppressed"`` marks hidden cells)."""
    rows: list[dict[str, Any]] = []
    for r, line in zip(table["row_levels"], table["counts"], strict=True):
        rows.append({table["row"]: r, **{
            f"{table['column']}={c}": ("suppressed" if n is None else n)
            for c, n in zip(table["column_levels"], line, strict=True)}})
    return rows
