"""Small-cell disclosure control at a node: the node's threshold and the suppression rule.

The node administrator sets the smallest count that may leave the node in the node config,
``algorithm_env: {V6FLOW_MIN_CELL_COUNT: "5"}``; the researcher cannot lower it (a task's input
does not reach a container's environment). A partial reads it once per call with
:func:`min_cell_count_from_env` and applies one rule to every count it returns:

    a count ``n`` with ``0 < n < min_cell_count`` is *small* and never leaves the node.

A zero is not small (an absent combination is zero implicitly anyway), and a threshold of 0
or 1 suppresses nothing. Suppressed counts travel as ``None``; :func:`suppress_counts` does
that for a list of counts.

Examples:
    >>> min_cell_count_from_env({"V6FLOW_MIN_CELL_COUNT": "5"})
    5
    >>> suppress_counts([0, 3, 5, 12], 5)
    [0, None, 5, 12]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from v6flow.errors import ConfigurationError

#: Env var (set by the node admin in ``algorithm_env``) holding the smallest count a node returns.
MIN_CELL_COUNT_ENV = "V6FLOW_MIN_CELL_COUNT"


def min_cell_count_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The node's threshold from ``V6FLOW_MIN_CELL_COUNT`` (0, no suppression, when unset or empty).

    Args:
        environ: where to read it; ``os.environ`` (decoded by ``wrap_algorithm``) when None.

    Raises:
        ConfigurationError: the value is not a non-negative whole number (the error names the
            variable; a bad value never falls back to 0 silently).
    """
    env = os.environ if environ is None else environ
    raw = env.get(MIN_CELL_COUNT_ENV, "").strip()
    if not raw:
        return 0
    if not raw.isdecimal():  # refuses "-1", "2.5", "five"; int() would also accept "+5", "1_0"
        raise ConfigurationError(
            MIN_CELL_COUNT_ENV,
            f"must be a non-negative integer (set by the node admin in algorithm_env), "
            f"got {raw!r}")
    return int(raw)


def check_min_cell_count(min_cell_count: int) -> int:
    """The threshold itself, after checking that it is not negative.

    Raises:
        ValueError: ``min_cell_count`` is negative.
    """
    if min_cell_count < 0:
        raise ValueError(f"min_cell_count must be >= 0, got {min_cell_count}")
    return min_cell_count


def is_small(count: int, min_cell_count: int) -> bool:
    """Whether ``count`` must not leave the node: ``0 < count < min_cell_count``."""
    return 0 < count < min_cell_count


def suppress_counts(counts: Iterable[int], min_cell_count: int) -> list[int | None]:
    """``counts`` as plain ints, each small one (see :func:`is_small`) replaced by ``None``.

    Raises:
        ValueError: ``min_cell_count`` is negative.
    """
    check_min_cell_count(min_cell_count)
    return [None if is_small(int(n), min_cell_count) else int(n) for n in counts]


__all__ = [
    "MIN_CELL_COUNT_ENV",
    "check_min_cell_count",
    "is_small",
    "min_cell_count_from_env",
    "suppress_counts",
]
