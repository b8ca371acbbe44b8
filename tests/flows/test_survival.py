"""Federated Kaplan-Meier and log-rank equal hand computations on the pooled rows.

References are written independently here: a per-time pandas loop for the Kaplan-Meier
estimate with Greenwood's standard error, ``scipy.stats.logrank`` for two groups and an
explicit per-time loop of the K-group log-rank variance matrix for more groups.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.logging import disable_run_logger
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "flows" / "v6flow_flows" / "survival" / "partial") not in sys.path:
    sys.path.insert(0, str(ROOT / "flows" / "v6flow_flows" / "survival" / "partial"))

from v6flow_survival import risk_counts  # noqa: E402
from v6flow_survival.counts import partial_counts  # noqa: E402

from tests.flows.pooled import pooled_frame  # noqa: E402
from tests.flows.researcher import Researcher  # noqa: E402
from v6flow.synthetic import write_federation_csvs  # noqa: E402
from v6flow_flows.survival import SURVIVAL_IMAGE  # noqa: E402
from v6flow_flows.survival.combine import combine_survival, table_rows  # noqa: E402
from v6flow_flows.survival.flow import kaplan_meier  # noqa: E402


@pytest.fixture(scope="session")
def survival_image(algorithm_image: Any) -> str:
    """The survival algorithm image, built offline from flows/v6flow_flows/survival."""
    tag: str = algorithm_image(ROOT / "flows" / "v6flow_flows" / "survival", SURVIVAL_IMAGE)
    return tag


def pandas_km(df: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier by hand: one row per distinct time with n, d, c, S and Greenwood SE."""
    rows = []
    s, acc = 1.0, 0.0
    for t in sorted(df["time"].unique()):
        at_t = df[df["time"] == t]
        n = int((df["time"] >= t).sum())
        d = int(at_t["event"].sum())
        s *= (n - d) / n
        acc = acc + d / (n * (n - d)) if n > d else math.nan
        rows.append({"time": t, "n": n, "d": d, "c": len(at_t) - d, "s": s,
                     "se": s * math.sqrt(acc)})  # NaN from the time S reaches 0
    return pd.DataFrame(rows)


def assert_curve_equals(curve: dict[str, Any], df: pd.DataFrame) -> None:
    """A flow curve equals the hand-computed Kaplan-Meier of ``df``."""
    expected = pandas_km(df)
    assert curve["times"] == expected["time"].tolist()
    assert curve["at_risk"] == expected["n"].tolist()
    assert curve["events"] == expected["d"].tolist()
    assert curve["censored"] == expected["c"].tolist()
    assert curve["n"] == len(df) and curve["events_total"] == int(df["event"].sum())
    np.testing.assert_allclose(curve["survival"], expected["s"], rtol=1e-12, atol=1e-15)
    se = np.array([math.nan if v is None else v for v in curve["std_error"]])
    np.testing.assert_allclose(se, expected["se"], rtol=1e-10, atol=1e-15)
    below = expected[expected["s"] <= 0.5]
    assert curve["median"] == (below["time"].iloc[0] if len(below) else None)


def log_rank_by_hand(df: pd.DataFrame, group: str) -> tuple[float, int]:
    """K-group log-rank statistic by an explicit loop over event times."""
    labels = sorted(df[group].unique())
    k = len(labels)
    u = np.zeros(k)
    v = np.zeros((k, k))
    for t in sorted(df.loc[df["event"] == 1, "time"].unique()):
        risk = df[df["time"] >= t]
        n = len(risk)
        d = int(((df["time"] == t) & (df["event"] == 1)).sum())
        for i, a in enumerate(labels):
            n_i = int((risk[group] == a).sum())
            d_i = int(((df["time"] == t) & (df["event"] == 1) & (df[group] == a)).sum())
            u[i] += d_i - d * n_i / n
            for j, b in enumerate(labels):
                if n > 1:
                    n_j = int((risk[group] == b).sum())
                    v[i, j] += d * (n - d) / (n - 1) * n_i / n * ((i == j) - n_j / n)
    stat = float(u[:-1] @ np.linalg.solve(v[:-1, :-1], u[:-1]))
    return stat, k - 1


def test_pooled_curve_and_log_rank_by_treated_equal_pooled(tmp_path: Path) -> None:
    """Curves per treated level, the overall curve and the log-rank test equal pooled ones."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    pooled = pooled_frame(paths)
    # Execute
    partials = {i: partial_counts(pd.read_csv(p), "time", "event", "treated")
                for i, p in enumerate(paths)}
    result = combine_survival(partials, by_organization=False)
    # Assert
    assert_curve_equals(result["overall"], pooled)
    assert [g["group"] for g in result["groups"]] == [0, 1]
    for g in result["groups"]:
        assert_curve_equals(g["curve"], pooled[pooled["treated"] == g["group"]])
    a, b = (pooled[pooled["treated"] == v] for v in (0, 1))
    reference = stats.logrank(stats.CensoredData.right_censored(a["time"], a["event"] == 0),
                              stats.CensoredData.right_censored(b["time"], b["event"] == 0))
    test = result["log_rank"]
    assert test["dof"] == 1
    assert test["statistic"] == pytest.approx(float(reference.statistic) ** 2, rel=1e-10)
    assert test["p_value"] == pytest.approx(float(reference.pvalue), rel=1e-8)
    assert sum(test["observed"].values()) == int(pooled["event"].sum())
    assert sum(test["expected"].values()) == pytest.approx(int(pooled["event"].sum()))
    assert [r["group"] for r in table_rows(result)] == [0, 1]


def test_log_rank_across_organizations_equals_hand_computation(tmp_path: Path) -> None:
    """Without a group column the organizations are compared (3 groups, 2 dof)."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    frames = [pd.read_csv(p).assign(org=i) for i, p in enumerate(paths)]
    pooled = pd.concat(frames, ignore_index=True)
    # Execute
    partials = {10 + i: partial_counts(df, "time", "event") for i, df in enumerate(frames)}
    result = combine_survival(partials, by_organization=True)
    # Assert
    statistic, dof = log_rank_by_hand(pooled, "org")
    assert [g["group"] for g in result["groups"]] == [10, 11, 12]
    for g, df in zip(result["groups"], frames, strict=True):
        assert_curve_equals(g["curve"], df)
    assert result["log_rank"]["dof"] == dof == 2
    assert result["log_rank"]["statistic"] == pytest.approx(statistic, rel=1e-10)
    assert result["log_rank"]["p_value"] == pytest.approx(stats.chi2.sf(statistic, dof),
                                                          rel=1e-10)


def test_ties_censoring_and_a_curve_that_reaches_zero() -> None:
    """Tied events and censorings across nodes; S reaches 0 (SE undefined -> None)."""
    # Prepare
    a = pd.DataFrame({"time": [1.0, 2.0, 2.0, 3.0, 5.0], "event": [1, 1, 0, 1, 1]})
    b = pd.DataFrame({"time": [2.0, 2.0, 4.0, np.nan], "event": [1, 0, 0, 1]})
    # Execute
    result = combine_survival({1: risk_counts("time", "event", mock_data=[a]),
                               2: risk_counts("time", "event", mock_data=[b])},
                              by_organization=True)
    # Assert
    pooled = pd.concat([a, b]).dropna()
    assert_curve_equals(result["overall"], pooled)
    assert result["overall"]["survival"][-1] == 0.0
    assert result["overall"]["std_error"][-1] is None


def test_partial_validates_its_columns() -> None:
    """A non-0/1 event indicator, a negative time or an unknown column fails at the node."""
    # Prepare
    df = pd.DataFrame({"time": [1.0, 2.0], "event": [1, 2]})
    # Execute / Assert
    with pytest.raises(ValueError, match="0 and 1"):
        partial_counts(df, "time", "event")
    with pytest.raises(ValueError, match="negative"):
        partial_counts(df.assign(event=[1, 0], time=[-1.0, 2.0]), "time", "event")
    with pytest.raises(KeyError):
        partial_counts(df, "time", "event", "treated")


@pytest.mark.docker
async def test_survival_flow_equals_pooled_km_and_log_rank(
        federation: Any, survival_image: str, researcher: Researcher) -> None:
    """Over 3 real nodes the curves by treated and the log-rank test equal the pooled ones."""
    # Prepare
    fed = researcher.federation(federation.collaboration_id, survival_image)
    pooled = pooled_frame(federation.csv_paths)
    # Execute
    with disable_run_logger():
        result = await kaplan_meier.fn(group="treated", federation=fed)
    # Assert
    assert result["organizations"] == len(federation.nodes)
    assert result["group_by"] == "treated"
    assert_curve_equals(result["overall"], pooled)
    for g in result["groups"]:
        assert_curve_equals(g["curve"], pooled[pooled["treated"] == g["group"]])
    statistic, dof = log_rank_by_hand(pooled, "treated")
    assert result["log_rank"]["dof"] == dof
    assert result["log_rank"]["statistic"] == pytest.approx(statistic, rel=1e-10)
    assert result["log_rank"]["p_value"] == pytest.approx(stats.chi2.sf(statistic, dof),
                                                          rel=1e-10)
