"""What a deployed summary flow run must have recorded: artifact rows equal to pandas."""

from __future__ import annotations

import json
import math
from typing import Any


def artifact_rows(data: Any) -> list[dict[str, Any]]:
    """The rows of a table artifact (the API answers JSON text or a list)."""
    rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else data
    return rows


def expected_rows(pooled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The artifact rows pandas predicts: one per numeric column, per category, per missing."""
    rows: dict[str, dict[str, Any]] = dict(pooled["numeric"])
    for name, stats in pooled["categorical"].items():
        rows.update({f"{name}={value}": {"count": n} for value, n in stats["counts"].items()})
        rows[f"{name} (missing)"] = {"count": stats["missing"]}
    return rows


def assert_rows_match(got: list[dict[str, Any]], want: dict[str, dict[str, Any]]) -> None:
    """Same rows; every predicted value equal (floats within 1e-9); extra keys (quantiles) ok."""
    by_column = {str(row["column"]): row for row in got}
    assert set(by_column) == set(want)
    for column, expected in want.items():
        for key, value in expected.items():
            actual = by_column[column][key]
            if isinstance(value, float):
                assert math.isclose(float(actual), value, rel_tol=1e-9, abs_tol=1e-9), (
                    column, key, actual, value)
            else:
                assert actual == value, (column, key, actual, value)
