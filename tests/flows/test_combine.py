"""The summary's pure parts: node partials + central merge equal pandas on pooled data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import v6flow_summary
from v6flow_summary.histogram import partial_histograms
from v6flow_summary.stats import partial_summary

from tests.flows.fixtures import NUMERIC_FIELDS, assert_summary_matches_suppressed_pandas
from tests.flows.pooled import (
    assert_matches_pandas,
    assert_quantiles_within_bin_width,
    pandas_summary,
    pooled_frame,
)
from v6flow.algorithm import MIN_CELL_COUNT_ENV, min_cell_count_from_env
from v6flow.errors import ConfigurationError
from v6flow.synthetic import write_federation_csvs
from v6flow_flows.parameters import Federation, ServerParameters
from v6flow_flows.summary.combine import combine_summaries, table_rows
from v6flow_flows.summary.flow import summary_statistics
from v6flow_flows.summary.quantiles import DEFAULT_QUANTILES, bin_edges, combine_histograms


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


@pytest.mark.parametrize("bins", [1000, 37, 1])
def test_histogram_quantiles_within_bin_width_of_pandas(tmp_path: Path, bins: int) -> None:
    """Round 1 min/max → fixed edges → per-org histograms → quantiles within a bin width."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    frames = {i: pd.read_csv(p) for i, p in enumerate(paths)}
    probabilities = [*DEFAULT_QUANTILES, 0.01, 0.999]
    table = combine_summaries({i: partial_summary(f) for i, f in frames.items()})
    edges = bin_edges(table["numeric"], bins)
    # Execute
    quantiles = combine_histograms({i: partial_histograms(f, edges) for i, f in frames.items()},
                                   edges, probabilities)
    # Assert
    assert_quantiles_within_bin_width(quantiles, pooled_frame(paths), probabilities)
    assert all(q["bins"] == bins and not q["suppressed_bins"] for q in quantiles.values())


def test_constant_column_quantile_is_the_constant() -> None:
    """A column with one value everywhere gets a zero-width bin and the exact value."""
    # Prepare
    frames = [pd.DataFrame({"x": [4.5] * n}) for n in (3, 2)]
    table = combine_summaries([partial_summary(f) for f in frames])
    edges = bin_edges(table["numeric"], 1000)
    # Execute
    quantiles = combine_histograms([partial_histograms(f, edges) for f in frames], edges, [0.5])
    # Assert
    assert quantiles["x"]["estimates"] == {"0.5": 4.5}
    assert quantiles["x"]["bin_width"] == 0


def test_small_cells_suppressed_with_node_threshold(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts 0 < n < V6FLOW_MIN_CELL_COUNT leave no node: small categories, small histogram
    bins and numeric columns with so few values; the central table marks and lists them,
    and everything it does give equals pandas (the same rule computed independently)."""
    # Prepare: bmi keeps at most 10 values at organization 2 (below the threshold)
    threshold = 25
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, str(threshold))
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    frames = {i: pd.read_csv(p) for i, p in enumerate(paths)}
    frames[2].loc[10:, "bmi"] = np.nan
    # Execute
    partials = {i: partial_summary(f, min_cell_count=min_cell_count_from_env())
                for i, f in frames.items()}
    table = combine_summaries(partials)
    edges = bin_edges(table["numeric"], 10)
    histograms = {i: partial_histograms(f, edges, min_cell_count_from_env())
                  for i, f in frames.items()}
    quantiles = combine_histograms(histograms, edges, [0.5])
    # Assert: node side
    for i, frame in frames.items():
        for name, stats in partials[i]["categorical"].items():
            truth = frame[name].dropna().astype(str).value_counts()
            assert stats["counts"] == {str(k): (None if int(n) < threshold else int(n))
                                       for k, n in truth.items()}, (i, name)
        for name, stats in partials[i]["numeric"].items():
            small = 0 < int(frame[name].count()) < threshold
            assert ("suppressed" in stats) == small, (i, name)
            assert set(stats) == ({"suppressed", "reason"} if small else {
                "count", "missing", "sum", "sum_sq", "sum_exact", "sum_sq_exact", "min",
                "max"}), (i, name)
        for name, column_edges in edges.items():
            truth_bins, _ = np.histogram(frame[name].dropna(), bins=np.asarray(column_edges))
            withheld = 0 < int(frame[name].count()) < threshold
            assert histograms[i]["histograms"][name]["counts"] == [
                None if withheld or 0 < n < threshold else int(n) for n in truth_bins], (i, name)
    # Assert: central side
    assert_summary_matches_suppressed_pandas(table, frames, dict.fromkeys(frames, threshold))
    assert set(table["suppressed"]["numeric"]) == {"bmi"}
    assert table["suppressed"]["categories"], "the threshold should suppress some categories"
    assert "bmi" not in edges and "bmi" not in quantiles
    for name, q in quantiles.items():
        hidden = any(None in h["histograms"][name]["counts"] for h in histograms.values())
        assert bool(q["suppressed_bins"]) == hidden
        assert (q["estimates"]["0.5"] is None) == hidden
    assert any(q["suppressed_bins"] for q in quantiles.values())
    counts = {r["column"]: r["count"] for r in table_rows(table)}
    assert counts["bmi"] == "suppressed" and "suppressed" in {
        n for column, n in counts.items() if "=" in column}


@pytest.mark.parametrize("rows", [1, 4, 5, 30])
def test_node_with_fewer_rows_than_its_threshold_returns_no_numeric_aggregates(
        rows: int) -> None:
    """Below the threshold a numeric column sends neither count, missing, sums nor min/max
    (count = rows - missing); at or above it, everything. An empty column is not small."""
    # Prepare
    rng = np.random.default_rng(rows)
    df = pd.DataFrame({"x": rng.normal(50, 10, rows), "empty": [np.nan] * rows,
                       "group": rng.choice(["a", "b"], rows)})
    # Execute
    part = partial_summary(df, min_cell_count=5)
    # Assert
    x = part["numeric"]["x"]
    if 0 < int(df["x"].count()) < 5:
        assert x == {"suppressed": True, "reason": x["reason"]}
        assert "5" in x["reason"] and MIN_CELL_COUNT_ENV in x["reason"]
    else:
        assert (x["count"], x["missing"]) == (rows, 0)
        assert (x["min"], x["max"]) == (float(df["x"].min()), float(df["x"].max()))
    assert part["numeric"]["empty"]["count"] == 0
    assert part["numeric"]["empty"]["missing"] == rows


def test_histogram_of_a_withheld_column_hides_its_empty_bins_too() -> None:
    """A column with 0 < n < k values gives only None bins: a hand-made task with narrow
    bins cannot locate its few values by where the suppressed bins are."""
    # Prepare
    df = pd.DataFrame({"few": [1.0, 7.0] + [np.nan] * 4, "many": [1.0] * 3 + [7.0] * 3})
    edges = {"few": [0.0, 2.0, 4.0, 6.0, 8.0], "many": [0.0, 2.0, 4.0, 6.0, 8.0]}
    # Execute
    hist = partial_histograms(df, edges, min_cell_count=3)["histograms"]
    # Assert
    assert hist["few"] == {"counts": [None] * 4, "suppressed": 4}
    assert hist["many"] == {"counts": [3, 0, 0, 3], "suppressed": 0}


def test_one_withheld_organization_leaves_the_column_out_not_mixed() -> None:
    """One node's withheld column makes the pooled statistics None (not the others' alone),
    listed with that node and its reason; other columns are pooled as usual."""
    # Prepare
    big = pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20.0)})
    small = pd.DataFrame({"x": [100.0, 101.0], "y": [np.nan, np.nan]})
    # Execute
    table = combine_summaries({"big": partial_summary(big, min_cell_count=5),
                               "small": partial_summary(small, min_cell_count=5)})
    # Assert
    assert table["numeric"]["x"] == dict.fromkeys(NUMERIC_FIELDS)
    assert [e["organization"] for e in table["suppressed"]["numeric"]["x"]] == ["small"]
    assert table["numeric"]["y"]["count"] == 20 and table["numeric"]["y"]["missing"] == 2
    assert table["numeric"]["y"]["max"] == 19.0
    assert bin_edges(table["numeric"], 4).keys() == {"y"}


def test_withheld_numeric_column_and_text_elsewhere_is_refused() -> None:
    """A withheld numeric column still holds numbers: text for it elsewhere is an error."""
    parts = [partial_summary(pd.DataFrame({"c": [1.0, 2.0]}), min_cell_count=5),
             partial_summary(pd.DataFrame({"c": ["a", "b"]}))]
    with pytest.raises(ValueError, match="numeric at one organization"):
        combine_summaries(parts)


def test_summary_partial_reads_the_node_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image's summary() applies V6FLOW_MIN_CELL_COUNT; a bad value fails, never 0."""
    # Prepare
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "a", "b"]})
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, "2")
    # Execute
    part = v6flow_summary.summary(mock_data=[df])
    # Assert
    assert part["categorical"]["s"]["counts"] == {"a": 2, "b": None}
    assert part["numeric"]["x"]["count"] == 3
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, "4")
    assert v6flow_summary.summary(mock_data=[df])["numeric"]["x"]["suppressed"] is True
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, "five")
    with pytest.raises(ConfigurationError, match=MIN_CELL_COUNT_ENV):
        v6flow_summary.summary(mock_data=[df])


@pytest.mark.parametrize("bad", [[0.0], [1.0], [0.5, 1.5], [-0.1]])
async def test_invalid_quantiles_fail_before_any_task(bad: list[float]) -> None:
    """A quantile outside (0, 1) is refused, naming the parameter, before any server call
    (the server address is unreachable, so reaching it would fail differently)."""
    # Prepare
    federation = Federation(collaboration_id=1, server=ServerParameters(
        url="http://127.0.0.1:9/api", username="nobody", password="x"))  # type: ignore[arg-type]
    # Execute / Assert: the plain logic
    with pytest.raises(ValueError, match="quantiles"):
        await summary_statistics.fn(federation=federation, quantiles=bad)
    # Execute / Assert: Prefect's parameter validation (what the engine runs first)
    with pytest.raises(Exception, match="quantiles"):
        summary_statistics.validate_parameters({"federation": {"collaboration_id": 1},
                                                "quantiles": bad})
