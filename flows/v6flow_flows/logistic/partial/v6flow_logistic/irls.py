"""One organization's contribution to a Newton-Raphson (IRLS) step of logistic regression.

For the current coefficients ``beta`` and the design ``X`` (intercept first, then the
predictors; categorical predictors as 0/1 indicators of every level but the first) the node
returns ``X'WX`` (W = p(1-p)), the score ``X'(y-p)`` and the log-likelihood of its rows,
after listwise deletion of rows missing the outcome or a predictor. Pure numpy/pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def term_names(predictors: Sequence[str],
               categories: Mapping[str, Sequence[Any]] | None = None) -> list[str]:
    """Names of the model's terms: ``Intercept``, then ``x`` or ``x[level]`` per indicator."""
    names = ["Intercept"]
    for name in predictors:
        levels = (categories or {}).get(name)
        names.extend([f"{name}[{lv}]" for lv in levels[1:]] if levels else [name])
    return names


def _same_level(values: pd.Series, level: Any) -> pd.Series:
    if isinstance(level, str):
        return values.astype(str) == level
    return values == level


def design(df: pd.DataFrame, outcome: str, predictors: Sequence[str],
           categories: Mapping[str, Sequence[Any]] | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """The design matrix (with intercept) and the 0/1 outcome after listwise deletion.

    Raises:
        KeyError: a column is not in the data.
        ValueError: the outcome is not 0/1, a predictor is not numeric, or a categorical
            predictor holds a level not in ``categories``.
    """
    wanted = [outcome, *predictors]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the data: {missing}")
    rows = df[wanted].dropna()
    y = rows[outcome].to_numpy(dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"outcome {outcome!r} must hold only 0 and 1")
    columns = [np.ones(len(rows))]
    for name in predictors:
        levels = (categories or {}).get(name)
        values = rows[name]
        if levels:
            known = np.zeros(len(rows), dtype=bool)
            for lv in levels:
                known |= _same_level(values, lv).to_numpy()
            if not known.all():
                raise ValueError(f"{name!r} holds levels outside {list(levels)}")
            columns.extend(_same_level(values, lv).to_numpy(dtype=float) for lv in levels[1:])
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            columns.append(values.to_numpy(dtype=float))
        else:
            raise ValueError(f"predictor {name!r} is not numeric; give its levels in "
                             "'categories'")
    return np.column_stack(columns), y


def irls_terms(x: np.ndarray, y: np.ndarray, beta: Sequence[float]) -> dict[str, Any]:
    """``X'WX``, ``X'(y-p)`` and the log-likelihood at ``beta`` (numerically stable).

    Raises:
        ValueError: ``beta`` has the wrong length.
    """
    b = np.asarray(beta, dtype=float)
    if b.shape != (x.shape[1],):
        raise ValueError(f"expected {x.shape[1]} coefficients, got {b.shape[0]}")
    eta = x @ b
    p = np.exp(-np.logaddexp(0.0, -eta))  # 1 / (1 + exp(-eta)) without overflow
    w = p * (1.0 - p)
    loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return {"n": len(y), "hessian": (x.T @ (x * w[:, None])).tolist(),
            "gradient": (x.T @ (y - p)).tolist(), "log_likelihood": loglik}


def partial_step(df: pd.DataFrame, outcome: str, predictors: Sequence[str],
                 coefficients: Sequence[float] | None = None,
                 categories: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """The node's IRLS terms at ``coefficients`` (zeros when None), with the term names."""
    x, y = design(df, outcome, predictors, categories)
    beta = list(coefficients) if coefficients is not None else [0.0] * x.shape[1]
    return {"terms": term_names(predictors, categories), **irls_terms(x, y, beta)}
