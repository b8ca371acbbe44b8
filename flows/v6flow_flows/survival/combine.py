"""Pooled Kaplan-Meier curves and the log-rank test from per-organization counts (pure).

Each organization sends, per group and distinct time, its events and censored counts (and
its group size). Summing them per time gives the pooled risk table: the number at risk just
before ``t`` is the group size minus everyone who left (event or censored) before ``t``. From
it the Kaplan-Meier estimate ``S(t) = prod(1 - d/n)``, Greenwood's standard error
``S(t) sqrt(sum d / (n (n - d)))`` and the K-group log-rank test follow exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from v6flow_flows._common import chi2_sf, level_key, normalise_level


def _merge(tables: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum risk tables of one group: ``{"n", "times", "events", "censored"}`` sorted."""
    n = 0
    counts: dict[float, list[int]] = {}
    for table in tables:
        n += int(table["n"])
        for t, d, c in zip(table["times"], table["events"], table["censored"], strict=True):
            cell = counts.setdefault(float(t), [0, 0])
            cell[0] += int(d)
            cell[1] += int(c)
    times = sorted(counts)
    return {"n": n, "times": times, "events": [counts[t][0] for t in times],
            "censored": [counts[t][1] for t in times]}


def at_risk(merged: Mapping[str, Any], times: Iterable[float]) -> np.ndarray:
    """Number at risk just before each of ``times`` in a merged risk table."""
    own = np.asarray(merged["times"], dtype=float)
    left = np.cumsum(np.asarray(merged["events"]) + np.asarray(merged["censored"]))
    before = np.searchsorted(own, np.asarray(list(times), dtype=float), side="left")
    gone = np.where(before > 0, left[np.maximum(before - 1, 0)] if len(left) else 0, 0)
    return int(merged["n"]) - gone


def kaplan_meier(merged: Mapping[str, Any]) -> dict[str, Any]:
    """Kaplan-Meier curve of a merged risk table, at every distinct time.

    Returns:
        ``{"n", "events_total", "times", "at_risk", "events", "censored", "survival",
        "std_error" (Greenwood; None once S reaches 0), "median" (None if S stays > 0.5)}``.
    """
    risk = at_risk(merged, merged["times"]).tolist()
    survival: list[float] = []
    std_error: list[float | None] = []
    s, greenwood = 1.0, 0.0
    for n, d in zip(risk, merged["events"], strict=True):
        s *= 1.0 - d / n
        greenwood = greenwood + d / (n * (n - d)) if n > d else math.inf
        survival.append(s)
        std_error.append(s * math.sqrt(greenwood) if math.isfinite(greenwood) else None)
    median = next((t for t, v in zip(merged["times"], survival, strict=True) if v <= 0.5),
                  None)
    return {"n": merged["n"], "events_total": sum(merged["events"]),
            "times": list(merged["times"]), "at_risk": risk, "events": list(merged["events"]),
            "censored": list(merged["censored"]), "survival": survival,
            "std_error": std_error, "median": median}


def log_rank(groups: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The K-group log-rank test of merged risk tables (None with fewer than 2 groups).

    Returns:
        ``{"statistic", "dof", "p_value", "observed", "expected"}`` (the last two by group,
        in the order of ``groups``).
    """
    labels = list(groups)
    if len(labels) < 2:
        return None
    event_times = sorted({t for g in groups.values()
                          for t, d in zip(g["times"], g["events"], strict=True) if d > 0})
    risk = np.array([at_risk(groups[k], event_times) for k in labels], dtype=float)
    deaths = np.zeros_like(risk)
    for i, k in enumerate(labels):
        own = dict(zip(groups[k]["times"], groups[k]["events"], strict=True))
        deaths[i] = [own.get(t, 0) for t in event_times]
    n, d = risk.sum(axis=0), deaths.sum(axis=0)
    expected = (d * risk / n).sum(axis=1)
    observed = deaths.sum(axis=1)
    factor = np.where(n > 1, d * (n - d) / np.maximum(n - 1, 1), 0.0) / n
    share = risk / n
    variance = np.einsum("t,it,jt->ij", factor * n, share, -share)
    variance[np.diag_indices(len(labels))] += (factor * n * share).sum(axis=1)
    u = (observed - expected)[:-1]
    statistic = float(u @ np.linalg.pinv(variance[:-1, :-1]) @ u)
    dof = len(labels) - 1
    return {"statistic": statistic, "dof": dof, "p_value": chi2_sf(statistic, dof),
            "observed": dict(zip(labels, observed.tolist(), strict=True)),
            "expected": dict(zip(labels, expected.tolist(), strict=True))}


def combine_survival(partials: Mapping[Any, Mapping[str, Any]], by_organization: bool
                     ) -> dict[str, Any]:
    """Pooled curve, one curve per group and the log-rank test across the groups.

    Args:
        partials: ``{organization_id: partial}``.
        by_organization: the groups are the organizations (the partials hold one group
            each); else the levels of the group column, pooled across organizations.

    Returns:
        ``{"overall": curve, "groups": [{"group", "curve"}], "log_rank", "organizations"}``.
    """
    by_group: dict[Any, list[Mapping[str, Any]]] = {}
    for org, part in partials.items():
        for table in part["groups"]:
            key = org if by_organization else normalise_level(table["group"])
            by_group.setdefault(key, []).append(table)
    merged = {k: _merge(by_group[k]) for k in sorted(by_group, key=level_key)}
    overall = _merge(t for tables in by_group.values() for t in tables)
    return {"overall": kaplan_meier(overall),
            "groups": [{"group": k, "curve": kaplan_meier(m)} for k, m in merged.items()],
            "log_rank": log_rank(merged), "organizations": len(partials)}


def table_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Artifact rows: per group, its size, events, median and log-rank O/E."""
    test = result["log_rank"] or {}
    return [{"group": g["group"], "n": g["curve"]["n"], "events": g["curve"]["events_total"],
             "median": g["curve"]["median"],
             "observed": test.get("observed", {}).get(g["group"]),
             "expected": test.get("expected", {}).get(g["group"])}
            for g in result["groups"]]
