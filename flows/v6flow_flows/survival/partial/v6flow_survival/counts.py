"""One organization's event and at-risk counts per distinct time (pure pandas, no I/O).

For each group (all rows when no group column) and each distinct observed time, the node
returns the number of events, the number censored and the number still at risk just before
that time. Censoring times are included so that the central merge knows every
organization's risk set at every pooled time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from v6flow.algorithm.levels import json_level, level_sort_key


def risk_table(times: pd.Series, events: pd.Series) -> dict[str, Any]:
    """Events, censored and at-risk counts per distinct time of one group."""
    frame = pd.DataFrame({"time": times.to_numpy(dtype=float),
                          "event": events.to_numpy(dtype=int)})
    grouped = frame.groupby("time")["event"].agg(["sum", "size"]).sort_index()
    removed = grouped["size"].to_numpy()
    at_risk = len(frame) - np.concatenate(([0], np.cumsum(removed)[:-1]))
    return {"n": len(frame), "times": [float(t) for t in grouped.index],
            "events": [int(d) for d in grouped["sum"]],
            "censored": [int(s - d) for s, d in zip(grouped["size"], grouped["sum"],
                                                       strict=True)],
            "at_risk": [int(n) for n in at_risk]}


def partial_counts(df: pd.DataFrame, time: str, event: str, group: str | None = None
                   ) -> dict[str, Any]:
    """Risk tables of the organization's rows, per level of ``group`` when given.

    Rows missing the time, the event indicator or the group are left out.

    Returns:
        ``{"groups": [{"group": level | None, "n", "times", "events", "censored",
        "at_risk"}]}``.

    Raises:
        KeyError: a column is not in the data.
        ValueError: the event indicator is not 0/1 or a time is negative.
    """
    wanted = [time, event] + ([group] if group else [])
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the data: {missing}")
    rows = df[wanted].dropna()
    if not rows[event].isin([0, 1]).all():
        raise ValueError(f"event indicator {event!r} must hold only 0 and 1")
    if (rows[time] < 0).any():
        raise ValueError(f"time column {time!r} holds negative values")
    if group is None:
        return {"groups": [{"group": None, **risk_table(rows[time], rows[event])}]}
    tables = [{"group": json_level(value), **risk_table(part[time], part[event])}
              for value, part in rows.groupby(group)]
    return {"groups": sorted(tables, key=lambda t: level_sort_key(t["group"]))}
