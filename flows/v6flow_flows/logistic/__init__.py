"""Federated logistic regression (Newton-Raphson / IRLS): flow, combine, partial."""

from v6flow_flows.logistic.combine import (
    NewtonRaphson,
    fit_newton_raphson,
    newton_step,
    pool_terms,
    table_rows,
)

LOGISTIC_IMAGE = "v6flow/logistic:0.1.0"

__all__ = ["LOGISTIC_IMAGE", "NewtonRaphson", "fit_newton_raphson", "newton_step", "pool_terms",
           "table_rows"]
