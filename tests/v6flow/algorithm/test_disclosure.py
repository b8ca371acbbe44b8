"""The node's minimum cell count and the one small-cell rule the partials share."""

from __future__ import annotations

import pytest

import v6flow.algorithm
from v6flow.algorithm.disclosure import (
    MIN_CELL_COUNT_ENV,
    check_min_cell_count,
    is_small,
    min_cell_count_from_env,
    suppress_counts,
)
from v6flow.errors import ConfigurationError


@pytest.mark.parametrize(("raw", "expected"), [("5", 5), (" 12 ", 12), ("0", 0), ("007", 7)])
def test_threshold_is_read_from_the_given_environment(raw: str, expected: int) -> None:
    """A non-negative whole number (blanks around it allowed) is the threshold."""
    assert min_cell_count_from_env({MIN_CELL_COUNT_ENV: raw}) == expected


@pytest.mark.parametrize("environ", [{}, {MIN_CELL_COUNT_ENV: ""}, {MIN_CELL_COUNT_ENV: "  "}])
def test_unset_or_empty_threshold_means_no_suppression(environ: dict[str, str]) -> None:
    """No value is 0: the node admin has not asked for suppression."""
    assert min_cell_count_from_env(environ) == 0


@pytest.mark.parametrize("raw", ["five", "-1", "2.5", "+5", "1e3", "5 cells"])
def test_bad_threshold_is_an_error_naming_the_variable(raw: str) -> None:
    """A value that is not a non-negative whole number fails, never falls back to 0."""
    with pytest.raises(ConfigurationError, match=MIN_CELL_COUNT_ENV) as caught:
        min_cell_count_from_env({MIN_CELL_COUNT_ENV: raw})
    assert caught.value.field == MIN_CELL_COUNT_ENV
    assert repr(raw) in caught.value.reason


def test_threshold_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping the (wrapper-decoded) os.environ is read."""
    monkeypatch.setenv(MIN_CELL_COUNT_ENV, "9")
    assert min_cell_count_from_env() == 9
    monkeypatch.delenv(MIN_CELL_COUNT_ENV)
    assert min_cell_count_from_env() == 0


def test_small_means_positive_and_below_the_threshold() -> None:
    """0 < n < k is small; zero, k and above are not; k = 0 or 1 hides nothing."""
    assert [n for n in range(8) if is_small(n, 5)] == [1, 2, 3, 4]
    assert not any(is_small(n, k) for n in range(5) for k in (0, 1))


def test_suppress_counts_replaces_small_counts_with_none() -> None:
    """Each count becomes None exactly when is_small says so; others stay plain ints."""
    # Prepare
    counts = [0, 1, 4, 5, 6, 100]
    # Execute
    suppressed = suppress_counts(iter(counts), 5)
    # Assert
    assert suppressed == [None if 0 < n < 5 else n for n in counts]
    assert all(type(n) is int for n in suppressed if n is not None)


def test_negative_threshold_is_refused() -> None:
    """A negative threshold is a programming error, not "no suppression"."""
    with pytest.raises(ValueError, match="min_cell_count"):
        check_min_cell_count(-1)
    with pytest.raises(ValueError, match="min_cell_count"):
        suppress_counts([1, 2], -1)


def test_exported_from_the_algorithm_tools() -> None:
    """Partials import the reader and the rule from v6flow.algorithm."""
    assert v6flow.algorithm.min_cell_count_from_env is min_cell_count_from_env
    assert v6flow.algorithm.suppress_counts is suppress_counts
    assert v6flow.algorithm.MIN_CELL_COUNT_ENV == "V6FLOW_MIN_CELL_COUNT"
