"""Independent reference: the summary computed by pandas on the pooled CSVs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd


def pooled_frame(paths: Sequence[Path]) -> pd.DataFrame:
    """All organizations' rows in one DataFrame."""
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def pandas_summary(df: pd.DataFrame) -> dict[str, Any]:
    """count, missing, mean, std (ddof=1), min, max per numeric column; counts otherwise."""
    numeric: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for name in df.columns:
        s = df[name]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            numeric[name] = {"count": int(s.count()), "missing": int(s.isna().sum()),
                             "mean": float(s.mean()), "std": float(s.std()),
                             "min": float(s.min()), "max": float(s.max())}
        else:
            categorical[name] = {"missing": int(s.isna().sum()),
                                 "counts": {str(k): int(v) for k, v in s.value_counts().items()}}
    return {"rows": len(df), "numeric": numeric, "categorical": categorical}


def assert_matches_pandas(table: dict[str, Any], expected: dict[str, Any],
                          tol: float = 1e-9) -> None:
    """Numbers equal within ``tol`` (absolute and relative), counts and categories exactly."""
    assert table["rows"] == expected["rows"]
    assert set(table["numeric"]) == set(expected["numeric"])
    assert table["categorical"] == expected["categorical"]
    for name, want in expected["numeric"].items():
        got = table["numeric"][name]
        assert got["count"] == want["count"], name
        assert got["missing"] == want["missing"], name
        for key in ("mean", "std", "min", "max"):
            assert math.isclose(got[key], want[key], rel_tol=tol, abs_tol=tol), (name, key)


def assert_quantiles_within_bin_width(quantiles: dict[str, Any], df: pd.DataFrame,
                                      probabilities: Sequence[float]) -> None:
    """Every estimated quantile is within its bin width of pandas' (linear) quantile."""
    numeric = [n for n in df.columns if pd.api.types.is_numeric_dtype(df[n])
               and not pd.api.types.is_bool_dtype(df[n]) and df[n].count()]
    assert set(quantiles) == set(numeric)
    for name in numeric:
        got = quantiles[name]
        width = got["bin_width"]
        assert width <= (float(df[name].max()) - float(df[name].min())) / got["bins"] * (
            1 + 1e-9) + 1e-12, name
        assert set(got["estimates"]) == {str(q) for q in probabilities}, name
        for q in probabilities:
            exact = float(df[name].quantile(q))
            estimate = got["estimates"][str(q)]
            assert abs(estimate - exact) <= width * (1 + 1e-9) + 1e-12, (name, q)
