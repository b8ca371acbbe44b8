"""THE end-to-end test: the summary flow over 3 real nodes equals pandas on pooled CSVs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from tests.flows.fixtures import assert_summary_matches_suppressed_pandas, node_algorithm_env
from tests.flows.pooled import (
    assert_matches_pandas,
    assert_quantiles_within_bin_width,
    pandas_summary,
    pooled_frame,
)
from tests.flows.researcher import Researcher
from v6flow.algorithm import MIN_CELL_COUNT_ENV
from v6flow_flows.summary.flow import summary_statistics
from v6flow_flows.summary.quantiles import DEFAULT_QUANTILES


@pytest.mark.docker
async def test_summary_flow_equals_pandas_on_pooled_csvs(
        federation: Any, summary_image: str, researcher: Researcher) -> None:
    """Federated count/missing/mean/std/min/max and category counts equal pooled pandas;
    the default quantiles (second, histogram round) are within a bin width of pandas'."""
    # Prepare
    # Execute
    with disable_run_logger():
        table = await summary_statistics.fn(
            federation=researcher.federation(federation.collaboration_id, summary_image))
    # Assert
    pooled = pooled_frame(federation.csv_paths)
    assert table["organizations"] == len(federation.nodes)
    assert_matches_pandas(table, pandas_summary(pooled))
    assert_quantiles_within_bin_width(table["quantiles"], pooled, DEFAULT_QUANTILES)
    assert table["suppressed"] == {"categories": {}, "numeric": {}, "histogram_bins": {}}


@pytest.mark.docker
async def test_summary_flow_of_chosen_columns_and_organizations(
        federation: Any, summary_image: str, researcher: Researcher) -> None:
    """Only the chosen organizations' rows and the chosen columns are summarised."""
    # Prepare
    chosen = federation.organization_ids[1:]
    # Execute
    with disable_run_logger():
        table = await summary_statistics.fn(
            federation=researcher.federation(federation.collaboration_id, summary_image,
                                             organizations=chosen),
            columns=["bmi", "smoker"], quantiles=[0.1, 0.9], bins=50)
    # Assert
    paths = [n.csv_path for n in federation.nodes if n.organization_id in chosen]
    pooled = pooled_frame(paths)[["bmi", "smoker"]]
    assert_matches_pandas(table, pandas_summary(pooled))
    assert_quantiles_within_bin_width(table["quantiles"], pooled, [0.1, 0.9])


@pytest.mark.docker
async def test_summary_flow_honours_a_node_admins_minimum_cell_count(
        federation: Any, summary_image: str, researcher: Researcher) -> None:
    """A node configured with algorithm_env V6FLOW_MIN_CELL_COUNT withholds its numeric
    columns with fewer values and its small categories; the federated table leaves those
    out, lists them, and equals pandas (the same rule on the pooled CSVs) everywhere else."""
    # Prepare: a threshold just above the last node's sparsest numeric column
    node = federation.nodes[-1]
    frames = {n.organization_id: pd.read_csv(n.csv_path) for n in federation.nodes}
    threshold = int(frames[node.organization_id].select_dtypes("number").count().min()) + 1
    thresholds = {org: threshold if org == node.organization_id else 0 for org in frames}
    # Execute
    with node_algorithm_env(federation, node, {MIN_CELL_COUNT_ENV: str(threshold)}), \
            disable_run_logger():
        table = await summary_statistics.fn(
            federation=researcher.federation(federation.collaboration_id, summary_image),
            quantiles=[])
    # Assert
    assert table["suppressed"]["numeric"], "the threshold should withhold a numeric column"
    assert_summary_matches_suppressed_pandas(table, frames, thresholds)
