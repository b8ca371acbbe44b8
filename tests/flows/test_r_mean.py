"""The federated mean's pooling (flows/v6flow_flows/r_mean/combine.py) and its Python
partial, in process."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "flows" / "v6flow_flows" / "r_mean" / "partial") not in sys.path:
    sys.path.insert(0, str(ROOT / "flows" / "v6flow_flows" / "r_mean" / "partial"))

import v6flow_mean  # noqa: E402

from tests.flows.pooled import pooled_frame  # noqa: E402
from v6flow.algorithm import MIN_CELL_COUNT_ENV  # noqa: E402
from v6flow.synthetic import write_federation_csvs  # noqa: E402
from v6flow_flows.r_mean.combine import combine_means  # noqa: E402


def test_pooled_partials_equal_the_pandas_mean(tmp_path: Path) -> None:
    """Partials of each CSV pool to pandas' mean, count and missing count on all rows."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    # Execute
    partials = {i: v6flow_mean.sum_count("bmi", mock_data=[pd.read_csv(p)])
                for i, p in enumerate(paths)}
    result = combine_means(partials)
    # Assert
    pooled = pooled_frame(paths)["bmi"]
    assert (result["count"], result["missing"]) == (int(pooled.count()),
                                                    int(pooled.isna().sum()))
    assert math.isclose(result["mean"], float(pooled.mean()), rel_tol=1e-12)
    assert {e["language"] for e in result["organizations"].values()} == {"Python"}


def test_a_suppressing_node_leaves_no_pooled_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node under its V6FLOW_MIN_CELL_COUNT returns no sum; the pool then has no mean."""
    # Prepare
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, "3")
    small = v6flow_mean.sum_count("x", mock_data=[pd.DataFrame({"x": [1.0, 2.0, None]})])
    monkeypatch.delenv(MIN_CELL_COUNT_ENV)
    large = v6flow_mean.sum_count("x", mock_data=[pd.DataFrame({"x": [1.0, 2.0, 4.0]})])
    r_like = {"sum": 10.0, "count": 4, "missing": 0, "language": "R"}
    # Execute
    result = combine_means({1: small, 2: large, 3: r_like})
    # Assert
    assert small["sum"] is None and "fewer than 3" in small["suppressed"]
    assert (result["mean"], result["sum"], result["count"]) == (None, None, None)
    assert result["suppressed"] == [1] and result["missing"] == 1
    assert combine_means({2: large, 3: r_like})["mean"] == pytest.approx(17.0 / 7)
