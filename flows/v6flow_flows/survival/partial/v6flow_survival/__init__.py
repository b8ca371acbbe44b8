"""v6flow Kaplan-Meier survival: the partial function that runs at each node.

The image runs ``wrap_algorithm()`` with ``PKG_NAME=v6flow_survival``; the task input
``{"method": "risk_counts", "kwargs": {"time": "time", "event": "event", "group": "treated"}}``
calls :func:`risk_counts` with the node's default database loaded as a DataFrame.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from v6flow.algorithm import data
from v6flow_survival.counts import partial_counts, risk_table


@data(1)
def risk_counts(df: pd.DataFrame, time: str, event: str, group: str | None = None
                ) -> dict[str, Any]:
    """Events, censored and at-risk counts per distinct time (per group level if given)."""
    return partial_counts(df, time, event, group)


__all__ = ["partial_counts", "risk_counts", "risk_table"]
