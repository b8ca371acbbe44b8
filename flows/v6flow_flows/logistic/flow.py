"""The logistic regression central function as a Prefect flow (federated Newton-Raphson).

Each iteration sends the current coefficients to every organization (``v6flow_logistic.
irls_step`` in the ``v6flow/logistic`` image), sums their ``X'WX``, ``X'(y-p)`` and
log-likelihoods, and takes the Newton step, until the largest change is below the tolerance.
The result equals the pooled maximum-likelihood fit.

Examples:
    >>> import asyncio
    >>> from v6flow_flows.logistic.flow import logistic_regression
    >>> from v6flow_flows.parameters import Federation, ServerParameters
    >>> asyncio.run(logistic_regression(outcome="outcome", predictors=["age", "bmi", "treated"],
    ...     federation=Federation(collaboration_id=1, server=ServerParameters(
    ...         url="http://127.0.0.1:7601/api", username="root", password="…"))))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext
from pydantic import Field

from v6flow.prefect import kill_on_cancellation, run_logger
from v6flow_flows.logistic import LOGISTIC_IMAGE
from v6flow_flows.logistic.combine import NewtonRaphson, fit_newton_raphson, table_rows
from v6flow_flows.parameters import Federation, resolve_connection

ColumnName = Annotated[str, Field(min_length=1)]
Level = str | int | float


@flow(name="logistic-regression", log_prints=False, persist_result=False,
      on_cancellation=[kill_on_cancellation], on_crashed=[kill_on_cancellation])
async def logistic_regression(
    outcome: ColumnName,
    predictors: Annotated[list[ColumnName], Field(min_length=1)],
    federation: Federation | None = None,
    categories: dict[str, Annotated[list[Level], Field(min_length=2)]] | None = None,
    tolerance: Annotated[float, Field(gt=0)] = 1e-8,
    max_iter: Annotated[int, Field(ge=1, le=100)] = 25,
) -> dict[str, Any]:
    """Federated unpenalised logistic regression of a 0/1 outcome (with intercept).

    Rows missing the outcome or a predictor are left out at each node (listwise deletion).

    Args:
        outcome: 0/1 outcome column.
        predictors: numeric predictors, or categorical ones listed in ``categories``.
        federation: where and how to run (login or Blocks, collaboration, organizations,
            image (default ``v6flow/logistic``), databases, retries per organization and
            round, timeout).
        categories: levels of categorical predictors, the first one the reference; the
            others enter as 0/1 indicator terms ``name[level]``.
        tolerance: converged when no coefficient changes by this much in a Newton step.
        max_iter: most Newton iterations (federated rounds).

    Returns:
        ``{"terms", "coefficients", "standard_errors", "z", "p_values" (dicts by term),
        "covariance", "log_likelihood", "iterations", "converged", "n"}``; the
        log-likelihood and the standard errors are those at the last evaluated coefficients.

    Raises:
        ValueError: the outcome is a predictor, ``categories`` names an unknown predictor,
            the predictors are collinear, or the fit diverged.
    """
    if outcome in predictors:
        raise ValueError("the outcome cannot be a predictor")
    unknown = sorted(set(categories or {}) - set(predictors))
    if unknown:
        raise ValueError(f"categories given for columns that are no predictors: {unknown}")
    logger = run_logger()
    connection = await resolve_connection(federation, image=LOGISTIC_IMAGE)

    async def evaluate(coefficients: list[float] | None) -> dict[int, Any]:
        kwargs: dict[str, Any] = {"outcome": outcome, "predictors": list(predictors),
                                  "coefficients": coefficients,
                                  "categories": dict(categories) if categories else None}
        return await connection.run_partial("irls_step", kwargs=kwargs)

    def progress(fit: NewtonRaphson) -> None:
        logger.info("iteration %d: log-likelihood %.10g", fit.iterations, fit.history[-1])

    result = await fit_newton_raphson(evaluate, tolerance, max_iter, progress)
    if not result["converged"]:
        logger.warning("no convergence after %d iterations (tolerance %g)", max_iter, tolerance)
    if FlowRunContext.get() is not None:  # not when the logic runs alone (``.fn()``)
        await acreate_table_artifact(key="logistic-regression", table=table_rows(result),
                                     description=f"Federated logistic regression of {outcome}")
    return result
