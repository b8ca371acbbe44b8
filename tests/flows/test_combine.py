"""The summary's pure parts: node partials + central merge equal pandas on pooled data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from v6flow_summary import MIN_CELL_COUNT_ENV, min_cell_count_from_env
from v6flow_summary.histogram import partial_histograms
from v6flow_summary.stats import partial_summary

from flows.summary.combine import combine_summaries, table_rows
from flows.summary.flow import ServerParameters, summary_statistics
from flows.summary.quantiles import DEFAULT_QUANTILES, bin_edges, combine_histograms
from tests.flows.pooled import (
    assert_matches_pandas,
    assert_quantiles_within_bin_width,
    pandas_summary,
    pooled_frame,
)
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
    """Counts 0 < n < V6FLOW_MIN_CELL_COUNT leave no node; the central table marks and lists
    them, and known pooled counts still equal pandas'."""
    # Prepare
    threshold = 25
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, str(threshold))
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    frames = {i: pd.read_csv(p) for i, p in enumerate(paths)}
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
        for name, column_edges in edges.items():
            truth_bins, _ = np.histogram(frame[name].dropna(), bins=np.asarray(column_edges))
            assert histograms[i]["histograms"][name]["counts"] == [
                None if 0 < n < threshold else int(n) for n in truth_bins], (i, name)
    # Assert: central side
    pooled = pandas_summary(pooled_frame(paths))
    listed = table["suppressed"]["categories"]
    assert listed, "the threshold should suppress some categories of this data"
    for name, stats in table["categorical"].items():
        for value, n in stats["counts"].items():
            small = [i for i, p in partials.items() if p["categorical"][name]["counts"].get(
                value, 0) is None]
            if small:
                assert n is None and listed[name][value] == small
            else:
                assert n == pooled["categorical"][name]["counts"][value]
    for name, q in quantiles.items():
        hidden = any(None in h["histograms"][name]["counts"] for h in histograms.values())
        assert bool(q["suppressed_bins"]) == hidden
        assert (q["estimates"]["0.5"] is None) == hidden
    assert any(q["suppressed_bins"] for q in quantiles.values())
    assert "suppressed" in {r["count"] for r in table_rows(table)}


def test_threshold_from_env_defaults_to_zero_and_rejects_garbage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset → 0 (no suppression); a non-integer or negative value is an error, not 0."""
    monkeypatch.delenv(MIN_CELL_COUNT_ENV, raising=False)
    assert min_cell_count_from_env() == 0
    for bad in ("five", "-1", "2.5"):
        monkeypatch.setenv(MIN_CELL_COUNT_ENV, bad)
        with pytest.raises(ValueError, match=MIN_CELL_COUNT_ENV):
            min_cell_count_from_env()


@pytest.mark.parametrize("bad", [[0.0], [1.0], [0.5, 1.5], [-0.1]])
async def test_invalid_quantiles_fail_before_any_task(bad: list[float]) -> None:
    """A quantile outside (0, 1) is refused, naming the parameter, before any server call
    (the server address is unreachable, so reaching it would fail differently)."""
    # Prepare
    server = ServerParameters(url="http://127.0.0.1:9/api", username="nobody",
                              password="x")  # type: ignore[arg-type]
    # Execute / Assert: the plain logic
    with pytest.raises(ValueError, match="quantiles"):
        await summary_statistics.fn(collaboration_id=1, server=server, quantiles=bad)
    # Execute / Assert: Prefect's parameter validation (what the engine runs first)
    with pytest.raises(Exception, match="quantiles"):
        summary_statistics.validate_parameters({"collaboration_id": 1, "quantiles": bad})
