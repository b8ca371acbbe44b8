"""Pool the partials of the federated mean, whatever language computed them (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def combine_means(partials: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The pooled mean from each organization's ``{"sum", "count", "missing", "language"}``.

    Args:
        partials: ``{organization_id: partial}`` as ``sum_count`` returns it (R or Python).

    Returns:
        ``{"mean", "sum", "count", "missing", "organizations": {id: {"language", "count",
        "suppressed"}}, "suppressed": [ids]}``. When a node suppressed its values (fewer
        than its ``V6FLOW_MIN_CELL_COUNT``), ``mean``, ``sum`` and ``count`` are None: a
        pooled value without that node would describe other data than asked for.

    Raises:
        ValueError: a partial lacks ``sum``/``count`` or holds a negative count.
    """
    total, count, missing = 0.0, 0, 0
    suppressed: list[int] = []
    organizations: dict[int, dict[str, Any]] = {}
    for org, part in sorted(partials.items()):
        if "sum" not in part or "count" not in part:
            raise ValueError(f"organization {org}: the partial has no sum/count: {part!r}")
        organizations[org] = {"language": part.get("language"), "count": part["count"],
                              "suppressed": part.get("suppressed")}
        missing += int(part.get("missing") or 0)
        if part["count"] is None:
            suppressed.append(org)
            continue
        if int(part["count"]) < 0:
            raise ValueError(f"organization {org}: negative count {part['count']}")
        total += float(part["sum"])
        count += int(part["count"])
    if suppressed:
        return {"mean": None, "sum": None, "count": None, "missing": missing,
                "organizations": organizations, "suppressed": suppressed}
    return {"mean": total / count if count else None, "sum": total, "count": count,
            "missing": missing, "organizations": organizations, "suppressed": []}
