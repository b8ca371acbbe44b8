"""The crosstab method: node tables with small-cell suppression, pooled table, chi-square.

Pure tests pool the partials of synthetic CSVs and compare with ``pandas.crosstab`` and
``scipy.stats.chi2_contingency`` on the pooled rows; the end-to-end tests run the flow over
the 3-node federation, once as configured and once with a node admin's minimum cell count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.logging import disable_run_logger
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "flows" / "v6flow_flows" / "crosstab" / "partial") not in sys.path:
    sys.path.insert(0, str(ROOT / "flows" / "v6flow_flows" / "crosstab" / "partial"))

import v6flow_crosstab  # noqa: E402
from v6flow_crosstab.table import contingency  # noqa: E402

from tests.flows.fixtures import node_algorithm_env  # noqa: E402
from tests.flows.pooled import pooled_frame  # noqa: E402
from tests.flows.researcher import Researcher  # noqa: E402
from v6flow.algorithm import MIN_CELL_COUNT_ENV  # noqa: E402
from v6flow.errors import ConfigurationError  # noqa: E402
from v6flow.synthetic import write_federation_csvs  # noqa: E402
from v6flow_flows._common import chi2_sf, normal_two_sided_p  # noqa: E402
from v6flow_flows.crosstab import CROSSTAB_IMAGE  # noqa: E402
from v6flow_flows.crosstab.combine import combine_tables, table_rows  # noqa: E402
from v6flow_flows.crosstab.flow import crosstab  # noqa: E402

PAIRS = [("sex", "smoker"), ("smoker", "treated"), ("treated", "outcome")]


@pytest.fixture(scope="session")
def crosstab_image(algorithm_image: Any) -> str:
    """The crosstab algorithm image, built offline from flows/v6flow_flows/crosstab."""
    tag: str = algorithm_image(ROOT / "flows" / "v6flow_flows" / "crosstab", CROSSTAB_IMAGE)
    return tag


def assert_equals_pandas(table: dict[str, Any], pooled: pd.DataFrame, row: str,
                         column: str) -> None:
    """Levels, counts, totals and the chi-square test equal pandas/scipy on pooled rows."""
    expected = pd.crosstab(pooled[row], pooled[column])
    assert table["complete"] is True and table["suppressed_cells"] == []
    assert table["row_levels"] == expected.index.tolist()
    assert table["column_levels"] == expected.columns.tolist()
    assert table["counts"] == expected.to_numpy().tolist()
    assert table["n"] == int(expected.to_numpy().sum())
    assert table["row_totals"] == expected.sum(axis=1).tolist()
    assert table["column_totals"] == expected.sum(axis=0).tolist()
    chi2, p, dof, cells = stats.chi2_contingency(expected.to_numpy(), correction=False)
    assert table["chi_square"]["dof"] == dof
    assert table["chi_square"]["statistic"] == pytest.approx(chi2, rel=1e-12)
    assert table["chi_square"]["p_value"] == pytest.approx(p, rel=1e-10, abs=1e-300)
    assert table["chi_square"]["min_expected"] == pytest.approx(float(cells.min()), rel=1e-12)


@pytest.mark.parametrize(("row", "column"), PAIRS)
def test_pooled_table_equals_pandas_crosstab(tmp_path: Path, row: str, column: str) -> None:
    """Without suppression the pooled table and its test equal pandas/scipy on pooled data."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    # Execute
    partials = {i: contingency(pd.read_csv(p), row, column) for i, p in enumerate(paths)}
    table = combine_tables(partials, row=row, column=column)
    # Assert
    assert_equals_pandas(table, pooled_frame(paths), row, column)
    assert table["organizations"] == 3


def test_suppressed_count_never_leaves_the_node() -> None:
    """A positive count below the threshold is None, and nothing else reveals it."""
    # Prepare: the node has 2 (F, current), the threshold is 3
    df = pd.DataFrame({"sex": ["F"] * 9 + ["M"] * 8,
                       "smoker": ["never"] * 7 + ["current"] * 2 + ["never"] * 4 + ["current"] * 4})
    # Execute
    part = contingency(df, "sex", "smoker", min_cell_count=3)
    # Assert
    assert part["counts"] == [[None, 7], [4, 4]]
    assert part["suppressed"] == 1
    assert set(part) == {"row_levels", "column_levels", "counts", "min_cell_count", "suppressed"}
    assert "17" not in json.dumps(part) and "9" not in json.dumps(part)  # no totals


def test_zero_cells_and_counts_at_the_threshold_are_returned() -> None:
    """Only 0 < n < threshold is suppressed: zeros and counts equal to it are shown."""
    # Prepare
    df = pd.DataFrame({"a": ["x"] * 3 + ["y"] * 5, "b": ["u"] * 3 + ["v"] * 5})
    # Execute
    part = contingency(df, "a", "b", min_cell_count=3)
    # Assert
    assert part["counts"] == [[3, 0], [0, 5]]
    assert part["suppressed"] == 0


def test_pooled_table_marks_cells_suppressed_anywhere(tmp_path: Path) -> None:
    """A cell suppressed at one organization is None in the pooled table; no test then."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    frames = [pd.read_csv(p) for p in paths]
    small = pd.crosstab(frames[2]["sex"], frames[2]["smoker"])
    threshold = int(small.to_numpy().min()) + 1  # suppresses at least the smallest cell
    # Execute
    partials = {i: contingency(df, "sex", "smoker", threshold if i == 2 else 0)
                for i, df in enumerate(frames)}
    table = combine_tables(partials, row="sex", column="smoker")
    # Assert
    pooled = pd.crosstab(pooled_frame(paths)["sex"], pooled_frame(paths)["smoker"])
    hidden = {(r, c) for r in small.index for c in small.columns
              if 0 < small.loc[r, c] < threshold}
    assert hidden
    assert {(s["row"], s["column"]) for s in table["suppressed_cells"]} == hidden
    assert all(s["organizations"] == [2] for s in table["suppressed_cells"])
    for i, r in enumerate(table["row_levels"]):
        for j, c in enumerate(table["column_levels"]):
            want = None if (r, c) in hidden else int(pooled.loc[r, c])
            assert table["counts"][i][j] == want
    assert table["complete"] is False
    assert table["chi_square"] is None and table["n"] is None
    assert any(v == "suppressed" for row in table_rows(table) for v in row.values())


def test_partial_reads_the_node_threshold_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node admin's V6FLOW_MIN_CELL_COUNT applies; a bad value fails, never 0."""
    # Prepare
    df = pd.DataFrame({"a": ["x", "x", "y", "y", "y"], "b": ["u", "u", "u", "u", "u"]})
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, "3")
    # Execute
    part = v6flow_crosstab.local_table("a", "b", mock_data=[df])
    # Assert
    assert part["counts"] == [[None], [3]]
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, "five")
    with pytest.raises(ConfigurationError, match=MIN_CELL_COUNT_ENV):
        v6flow_crosstab.local_table("a", "b", mock_data=[df])
    monkeypatch.delenv(MIN_CELL_COUNT_ENV)
    assert v6flow_crosstab.local_table("a", "b", mock_data=[df])["counts"] == [[2], [3]]


def test_numeric_levels_merge_across_int_and_float_columns() -> None:
    """0/1 read as float at one node (missing values) and int at another pool together."""
    # Prepare
    a = pd.DataFrame({"treated": [0, 1, 1], "outcome": [1, 0, 1]})
    b = pd.DataFrame({"treated": [0.0, 1.0, np.nan], "outcome": [1, 1, 0]})
    # Execute
    table = combine_tables([contingency(a, "treated", "outcome"),
                            contingency(b, "treated", "outcome")])
    # Assert
    pooled = pd.concat([a, b]).dropna()
    expected = pd.crosstab(pooled["treated"].astype(int), pooled["outcome"])
    assert table["row_levels"] == [0, 1]
    assert table["counts"] == expected.to_numpy().tolist()


@pytest.mark.parametrize("dof", [1, 2, 3, 5, 10, 40])
def test_chi2_and_normal_tails_equal_scipy(dof: int) -> None:
    """The pure-Python regularized gamma tail equals scipy's chi-square survival function."""
    for x in (1e-4, 0.3, 1.0, 3.84, dof + 1.0, 12.0, 60.0, 250.0):
        assert chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-12, abs=1e-300)
    for z in (0.0, 0.5, 1.96, 4.0, -3.0):
        assert normal_two_sided_p(z) == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)


@pytest.mark.docker
async def test_crosstab_flow_equals_pandas_on_pooled_csvs(
        federation: Any, crosstab_image: str, researcher: Researcher) -> None:
    """Over 3 real nodes the flow's table and chi-square equal pandas/scipy on pooled CSVs."""
    # Prepare
    fed = researcher.federation(federation.collaboration_id, crosstab_image)
    # Execute
    with disable_run_logger():
        table = await crosstab.fn(row="sex", column="smoker", federation=fed)
    # Assert
    assert table["organizations"] == len(federation.nodes)
    assert_equals_pandas(table, pooled_frame(federation.csv_paths), "sex", "smoker")


@pytest.mark.docker
async def test_crosstab_flow_honours_a_node_admins_minimum_cell_count(
        federation: Any, crosstab_image: str, researcher: Researcher) -> None:
    """A node configured with algorithm_env V6FLOW_MIN_CELL_COUNT hides its small cells."""
    # Prepare: a threshold just above the last node's smallest cell
    node = federation.nodes[-1]
    local = pd.read_csv(node.csv_path)
    small = pd.crosstab(local["sex"], local["smoker"])
    threshold = int(small.to_numpy().min()) + 1
    # Execute
    with node_algorithm_env(federation, node, {MIN_CELL_COUNT_ENV: str(threshold)}), \
            disable_run_logger():
        table = await crosstab.fn(row="sex", column="smoker", federation=researcher.federation(
            federation.collaboration_id, crosstab_image))
    # Assert
    pooled = pd.crosstab(pooled_frame(federation.csv_paths)["sex"],
                         pooled_frame(federation.csv_paths)["smoker"])
    hidden = {(r, c) for r in small.index for c in small.columns
              if 0 < small.loc[r, c] < threshold}
    assert {(s["row"], s["column"]) for s in table["suppressed_cells"]} == hidden
    assert all(s["organizations"] == [node.organization_id] for s in table["suppressed_cells"])
    for i, r in enumerate(table["row_levels"]):
        for j, c in enumerate(table["column_levels"]):
            assert table["counts"][i][j] == (None if (r, c) in hidden else int(pooled.loc[r, c]))
    assert table["chi_square"] is None
