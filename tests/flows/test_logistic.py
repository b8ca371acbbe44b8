"""Federated logistic regression (Newton-Raphson / IRLS) equals the pooled fit.

The reference is an independent pooled fit written here: iteratively reweighted least
squares on the working response (a weighted least-squares solve per step, not the node's
score/Hessian form), with standard errors from ``(X'WX)^-1`` at the optimum.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.logging import disable_run_logger
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "flows" / "v6flow_flows" / "logistic" / "partial") not in sys.path:
    sys.path.insert(0, str(ROOT / "flows" / "v6flow_flows" / "logistic" / "partial"))

from v6flow_logistic import irls_step  # noqa: E402
from v6flow_logistic.irls import partial_step  # noqa: E402

from tests.flows.pooled import pooled_frame  # noqa: E402
from tests.flows.researcher import Researcher  # noqa: E402
from v6flow.synthetic import write_federation_csvs  # noqa: E402
from v6flow_flows.logistic import LOGISTIC_IMAGE  # noqa: E402
from v6flow_flows.logistic.combine import fit_newton_raphson, table_rows  # noqa: E402
from v6flow_flows.logistic.flow import logistic_regression  # noqa: E402

PREDICTORS = ["age", "bmi", "treated"]


@pytest.fixture(scope="session")
def logistic_image(algorithm_image: Any) -> str:
    """The logistic regression algorithm image, built offline from flows/v6flow_flows/logistic."""
    tag: str = algorithm_image(ROOT / "flows" / "v6flow_flows" / "logistic", LOGISTIC_IMAGE)
    return tag


def pooled_fit(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Independent pooled maximum likelihood: IRLS as weighted least squares."""
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        eta = x @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1.0 - p)
        working = eta + (y - p) / w
        sqrt_w = np.sqrt(w)
        new, *_ = np.linalg.lstsq(x * sqrt_w[:, None], working * sqrt_w, rcond=None)
        if np.max(np.abs(new - beta)) < 1e-12:
            beta = new
            break
        beta = new
    p = 1.0 / (1.0 + np.exp(-(x @ beta)))
    se = np.sqrt(np.diag(np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None]))))
    loglik = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return {"beta": beta, "se": se, "z": beta / se, "p": 2 * stats.norm.sf(np.abs(beta / se)),
            "loglik": np.array(loglik)}


def pooled_design(df: pd.DataFrame, outcome: str, predictors: Sequence[str],
                  dummies: dict[str, list[str]] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Listwise-deleted pooled design with intercept (indicators for ``dummies`` levels)."""
    rows = df[[outcome, *predictors]].dropna()
    columns: list[np.ndarray] = [np.ones(len(rows))]
    for name in predictors:
        if dummies and name in dummies:
            columns += [(rows[name] == lv).to_numpy(dtype=float) for lv in dummies[name][1:]]
        else:
            columns.append(rows[name].to_numpy(dtype=float))
    return np.column_stack(columns), rows[outcome].to_numpy(dtype=float)


def federated_fit(frames: list[pd.DataFrame], outcome: str, predictors: list[str],
                  categories: dict[str, list[Any]] | None = None,
                  tolerance: float = 1e-10, max_iter: int = 50) -> dict[str, Any]:
    """The flow's loop run locally: node partials (one per frame) + central Newton steps."""

    async def evaluate(coefficients: list[float] | None) -> dict[int, Any]:
        return {i: partial_step(df, outcome, predictors, coefficients, categories)
                for i, df in enumerate(frames)}

    return asyncio.run(fit_newton_raphson(evaluate, tolerance, max_iter))


def assert_equals_pooled(result: dict[str, Any], reference: dict[str, np.ndarray],
                         tol: float = 1e-6) -> None:
    """Coefficients, SEs, z, p-values and log-likelihood equal the pooled fit within tol."""
    terms = result["terms"]
    got = {key: np.array([result[name][t] for t in terms]) for key, name in
           (("beta", "coefficients"), ("se", "standard_errors"), ("z", "z"), ("p", "p_values"))}
    for key in ("beta", "se", "z", "p"):
        np.testing.assert_allclose(got[key], reference[key], rtol=tol, atol=tol, err_msg=key)
    assert result["log_likelihood"] == pytest.approx(float(reference["loglik"]), rel=1e-9)
    assert result["converged"] is True


def test_federated_newton_equals_pooled_fit(tmp_path: Path) -> None:
    """Summed node terms give the pooled estimate, SEs and p-values to 1e-6."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(120, 80, 50))
    frames = [pd.read_csv(p) for p in paths]
    x, y = pooled_design(pooled_frame(paths), "outcome", PREDICTORS)
    # Execute
    result = federated_fit(frames, "outcome", PREDICTORS)
    # Assert
    assert_equals_pooled(result, pooled_fit(x, y))
    assert result["terms"] == ["Intercept", *PREDICTORS]
    assert result["n"] == len(y)
    assert 3 <= result["iterations"] <= 10
    assert [r["term"] for r in table_rows(result)] == result["terms"]


def test_categorical_predictors_enter_as_indicators(tmp_path: Path) -> None:
    """Levels given in ``categories`` become indicator terms against the first level."""
    # Prepare
    paths = write_federation_csvs(tmp_path, sizes=(150, 100, 60))
    frames = [pd.read_csv(p) for p in paths]
    levels = {"smoker": ["never", "former", "current"], "sex": ["F", "M"]}
    predictors = ["age", "smoker", "sex"]
    x, y = pooled_design(pooled_frame(paths), "outcome", predictors, levels)
    # Execute
    result = federated_fit(frames, "outcome", predictors, dict(levels))
    # Assert
    assert result["terms"] == ["Intercept", "age", "smoker[former]", "smoker[current]",
                               "sex[M]"]
    assert_equals_pooled(result, pooled_fit(x, y))


def test_partial_deletes_incomplete_rows_and_validates() -> None:
    """Rows missing a used column are dropped; a non-0/1 outcome or text predictor fails."""
    # Prepare
    df = pd.DataFrame({"y": [0, 1, 1, np.nan], "a": [1.0, np.nan, 3.0, 4.0],
                       "s": ["u", "v", "u", "v"]})
    # Execute
    part = irls_step("y", ["a"], mock_data=[df])
    # Assert
    assert part["n"] == 2
    assert part["gradient"] == pytest.approx([-0.5 + 0.5, 1 * -0.5 + 3 * 0.5])  # y - p at beta = 0
    assert part["log_likelihood"] == pytest.approx(2 * np.log(0.5))
    with pytest.raises(ValueError, match="not numeric"):
        partial_step(df, "y", ["s"])
    with pytest.raises(ValueError, match="0 and 1"):
        partial_step(df.assign(y=[0, 1, 2, 1]), "y", ["a"])
    with pytest.raises(ValueError, match="levels outside"):
        partial_step(df, "y", ["s"], categories={"s": ["u", "w"]})


def test_collinear_predictors_are_refused() -> None:
    """A predictor that copies another makes X'WX singular: a clear ValueError."""
    # Prepare
    df = pd.DataFrame({"y": [0, 1, 0, 1, 1, 0], "a": [1.0, 2, 3, 4, 5, 6]})
    df["b"] = 2 * df["a"]
    # Execute / Assert
    with pytest.raises(ValueError, match="singular"):
        federated_fit([df], "y", ["a", "b"])


def test_perfect_separation_stops_at_max_iter_unconverged() -> None:
    """Separated data never converge: the loop stops at max_iter and says so."""
    # Prepare
    df = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1], "a": [1.0, 2, 3, 4, 5, 6]})
    # Execute
    result = federated_fit([df.iloc[:3], df.iloc[3:]], "y", ["a"], max_iter=8)
    # Assert
    assert result["converged"] is False
    assert result["iterations"] == 8
    assert result["coefficients"]["a"] > 10


@pytest.mark.docker
async def test_logistic_flow_equals_pooled_fit_on_pooled_csvs(
        federation: Any, logistic_image: str, researcher: Researcher) -> None:
    """Over 3 real nodes the flow's iterations reach the pooled estimate to 1e-6.

    ``tolerance=1e-6`` saves one federated round (about 5 s here): Newton converges
    quadratically, so the coefficients are then exact to ~1e-14 and the standard errors
    (from the previous round's Hessian) to ~1e-8.
    """
    # Prepare
    fed = researcher.federation(federation.collaboration_id, logistic_image)
    x, y = pooled_design(pooled_frame(federation.csv_paths), "outcome", PREDICTORS)
    # Execute
    with disable_run_logger():
        result = await logistic_regression.fn(
            outcome="outcome", predictors=PREDICTORS, federation=fed, tolerance=1e-6)
    # Assert
    assert_equals_pooled(result, pooled_fit(x, y))
    assert result["n"] == len(y)
