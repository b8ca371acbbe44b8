"""Federated Newton-Raphson for logistic regression: summing partials and stepping (pure).

Every iteration each organization returns ``X'WX``, ``X'(y-p)`` and its log-likelihood at the
current coefficients; their sums are the pooled Hessian (negated), score and log-likelihood,
so the Newton step ``(X'WX)^-1 X'(y-p)`` is exactly the pooled IRLS step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from v6flow_flows._common import normal_two_sided_p


@dataclass(frozen=True)
class PooledTerms:
    """The organizations' IRLS terms summed at one set of coefficients."""

    terms: list[str]
    n: int
    hessian: np.ndarray
    gradient: np.ndarray
    log_likelihood: float


def pool_terms(partials: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
               ) -> PooledTerms:
    """Sum the organizations' ``X'WX``, ``X'(y-p)``, log-likelihoods and row counts.

    Raises:
        ValueError: no partials, or the organizations disagree on the model's terms.
    """
    parts = list(partials.values()) if isinstance(partials, Mapping) else list(partials)
    if not parts:
        raise ValueError("no partial results to pool")
    terms = list(parts[0]["terms"])
    for part in parts[1:]:
        if list(part["terms"]) != terms:
            raise ValueError(f"organizations disagree on the terms: {part['terms']} != {terms}")
    return PooledTerms(
        terms=terms,
        n=sum(int(p["n"]) for p in parts),
        hessian=sum((np.asarray(p["hessian"], dtype=float) for p in parts),
                    np.zeros((len(terms), len(terms)))),
        gradient=sum((np.asarray(p["gradient"], dtype=float) for p in parts),
                     np.zeros(len(terms))),
        log_likelihood=float(sum(float(p["log_likelihood"]) for p in parts)),
    )


def newton_step(pooled: PooledTerms) -> np.ndarray:
    """The Newton-Raphson update ``(X'WX)^-1 X'(y-p)``.

    Raises:
        ValueError: ``X'WX`` is singular (collinear predictors, a constant column, no rows).
    """
    try:
        return np.linalg.solve(pooled.hessian, pooled.gradient)
    except np.linalg.LinAlgError as exc:
        raise ValueError("X'WX is singular: predictors are collinear or constant") from exc


@dataclass
class NewtonRaphson:
    """The central state of the federated IRLS loop.

    Call :meth:`update` with each round's partials (evaluated at :attr:`coefficients`);
    it takes the Newton step and returns True once the largest change is below ``tolerance``.

    Examples:
        >>> fit = NewtonRaphson(tolerance=1e-8)
        >>> while not fit.update(partials_at(fit.coefficients)):  # doctest: +SKIP
        ...     pass
    """

    tolerance: float = 1e-8
    coefficients: list[float] | None = None
    iterations: int = 0
    last: PooledTerms | None = None
    history: list[float] = field(default_factory=list)

    def update(self, partials: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
               ) -> bool:
        """Take one Newton step from the partials; True when converged.

        Raises:
            ValueError: the Hessian is singular or the coefficients are not finite.
        """
        pooled = pool_terms(partials)
        beta = (np.asarray(self.coefficients, dtype=float) if self.coefficients is not None
                else np.zeros(len(pooled.terms)))
        delta = newton_step(pooled)
        beta = beta + delta
        if not np.all(np.isfinite(beta)):
            raise ValueError("the coefficients diverged (perfect separation?)")
        self.coefficients = beta.tolist()
        self.iterations += 1
        self.last = pooled
        self.history.append(pooled.log_likelihood)
        return bool(np.max(np.abs(delta)) < self.tolerance)

    def result(self, converged: bool) -> dict[str, Any]:
        """Coefficients, standard errors (inverse of the last ``X'WX``), z and p-values.

        Raises:
            ValueError: :meth:`update` was never called.
        """
        if self.last is None or self.coefficients is None:
            raise ValueError("no iteration was run")
        covariance = np.linalg.inv(self.last.hessian)
        se = np.sqrt(np.diag(covariance))
        beta = np.asarray(self.coefficients)
        z = beta / se
        terms = self.last.terms
        return {
            "terms": terms,
            "coefficients": dict(zip(terms, beta.tolist(), strict=True)),
            "standard_errors": dict(zip(terms, se.tolist(), strict=True)),
            "z": dict(zip(terms, z.tolist(), strict=True)),
            "p_values": {t: normal_two_sided_p(float(v)) for t, v in zip(terms, z, strict=True)},
            "covariance": covariance.tolist(),
            "log_likelihood": self.last.log_likelihood,
            "iterations": self.iterations, "converged": converged, "n": self.last.n,
        }


Partials = Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]]


async def fit_newton_raphson(evaluate: Callable[[list[float] | None], Awaitable[Partials]],
                             tolerance: float = 1e-8, max_iter: int = 25,
                             on_iteration: Callable[[NewtonRaphson], None] | None = None
                             ) -> dict[str, Any]:
    """The federated Newton-Raphson loop: evaluate the partials, step, until converged.

    Args:
        evaluate: coroutine giving the organizations' partials at the coefficients
            (None = zeros, the first round).
        tolerance: converged when no coefficient changes by this much.
        max_iter: most rounds; the result says ``"converged": False`` when reached
            (e.g. under perfect separation the coefficients keep growing).
        on_iteration: called after each step (progress logging).

    Returns:
        :meth:`NewtonRaphson.result`.
    """
    fit = NewtonRaphson(tolerance=tolerance)
    converged = False
    while not converged and fit.iterations < max_iter:
        converged = fit.update(await evaluate(fit.coefficients))
        if on_iteration is not None:
            on_iteration(fit)
    return fit.result(converged)


def table_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One artifact row per term: coefficient, SE, z and p-value."""
    return [{"term": t, "coef": result["coefficients"][t],
             "se": result["standard_errors"][t], "z": result["z"][t],
             "p": result["p_values"][t]} for t in result["terms"]]
