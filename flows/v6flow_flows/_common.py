"""Helpers shared by the statistical flows: levels and p-values.

The distribution functions are pure Python (``math`` only), so the flows need no SciPy:
the chi-square survival function is the regularized upper incomplete gamma function
``Q(k/2, x/2)`` (series / Lentz continued fraction, as in Numerical Recipes §6.2), accurate
to about 1e-14 relative.
"""

from __future__ import annotations

import math
from typing import Any

_EPS = 1e-16
_TINY = 1e-300
_MAX_TERMS = 10_000


def normalise_level(value: Any) -> Any:
    """A JSON level as the pooled data would hold it: integral floats become ints."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def level_key(value: Any) -> tuple[int, Any]:
    """Sort key for mixed levels: numbers (numerically) before texts."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _gamma_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its series (x < a + 1)."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(_MAX_TERMS):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_fraction(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) by its continued fraction (x >= a + 1)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def regularized_gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function ``Q(a, x) = Γ(a, x) / Γ(a)``.

    Raises:
        ValueError: ``a <= 0`` or ``x < 0``.
    """
    if a <= 0 or x < 0:
        raise ValueError(f"Q(a, x) needs a > 0 and x >= 0, got a={a}, x={x}")
    if x == 0:
        return 1.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _gamma_series(a, x))
    return _gamma_fraction(a, x)


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X chi-square with ``dof`` degrees of freedom (1.0 when dof=0)."""
    if dof <= 0:
        return 1.0
    return regularized_gamma_q(dof / 2.0, max(statistic, 0.0) / 2.0)


def normal_two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic, ``P(|Z| >= |z|)``."""
    return math.erfc(abs(z) / math.sqrt(2.0))
