"""The summary's pure parts: node partials + central merge equal pandas on pooled data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from v6flow_summary.stats import partial_summary

from flows.summary.combine import combine_summaries, table_rows
from tests.flows.pooled import assert_matches_pandas, pandas_summary, pooled_frame
from v6flow.synthetic import write_federation_csvs


def test_combine_equals_pandas_on_pooled_csvs(tmp_path: Path) -> None:
    """Merging per-organization partials gives pandas' statistics of the pooled table."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    # Execute
    partials = {i: partial_summary(pd.read_csv(p)) for i, p in enumerate(paths)}
    table = combine_summaries(partials)
    # Assert
    assert_matches_pandas(table, pandas_summary(pooled_frame(paths)))
    assert table["organizations"] == 3


def test_combine_is_exact_where_naive_sums_are_not() -> None:
    """Large offsets with a small spread: the exact merge still matches a pooled std."""
    # Prepare
    rng = np.random.default_rng(3)
    frames = [pd.DataFrame({"x": 1e8 + rng.normal(0, 1, n)}) for n in (500, 300, 7)]
    # Execute
    table = combine_summaries([partial_summary(f) for f in frames])
    # Assert
    pooled = pd.concat(frames, ignore_index=True)["x"]
    assert table["numeric"]["x"]["std"] == pytest.approx(float(pooled.std()), rel=1e-9)
    assert table["numeric"]["x"]["mean"] == pytest.approx(float(pooled.mean()), rel=1e-15)


def test_all_missing_column_merges_as_categorical() -> None:
    """A text column that is empty at one organization (read as float) stays categorical."""
    # Prepare
    a = pd.DataFrame({"smoker": ["never", "current", None]})
    b = pd.DataFrame({"smoker": [np.nan, np.nan]})
    # Execute
    table = combine_summaries([partial_summary(a), partial_summary(b)])
    # Assert
    assert table["categorical"]["smoker"] == {"missing": 3,
                                             "counts": {"current": 1, "never": 1}}
    assert "smoker" not in table["numeric"]


def test_table_rows_flattens_every_statistic(tmp_path: Path) -> None:
    """Flat rows list each numeric column and each category once."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(10, 12))
    table = combine_summaries([partial_summary(pd.read_csv(p)) for p in paths])
    # Execute
    rows = table_rows(table)
    # Assert
    names = [r["column"] for r in rows]
    assert set(table["numeric"]) <= set(names)
    assert "sex (missing)" in names
    assert len(names) == len(set(names))
