"""v6flow logistic regression: the partial function that runs at each node.

The image runs ``wrap_algorithm()`` with ``PKG_NAME=v6flow_logistic``; each iteration of the
central flow sends ``{"method": "irls_step", "kwargs": {"outcome", "predictors",
"coefficients", "categories"}}`` and gets this organization's ``X'WX``, ``X'(y-p)``, the
log-likelihood and its row count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from v6flow.algorithm import data
from v6flow_logistic.irls import design, irls_terms, partial_step, term_names


@data(1)
def irls_step(df: pd.DataFrame, outcome: str, predictors: Sequence[str],
              coefficients: Sequence[float] | None = None,
              categories: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """This organization's IRLS terms at ``coefficients`` (see :func:`partial_step`)."""
    return partial_step(df, outcome, predictors, coefficients, categories)


__all__ = ["design", "irls_step", "irls_terms", "partial_step", "term_names"]
