"""Levels as JSON scalars and their order (shared by the crosstab and survival partials)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from v6flow.algorithm.levels import json_level, level_sort_key


def test_levels_become_plain_json_scalars() -> None:
    """numpy ints/floats/bools unwrap; integral floats and booleans become ints."""
    series = pd.Series([np.int64(2), np.float64(1.0), np.float64(2.5), np.bool_(True), "F"],
                       dtype=object)
    levels = [json_level(v) for v in series]
    assert levels == [2, 1, 2.5, 1, "F"]
    assert json.dumps(levels) == '[2, 1, 2.5, 1, "F"]'
    assert all(type(v) in (int, float, str) for v in levels)


def test_numbers_sort_before_texts() -> None:
    """Numbers numerically first, then texts alphabetically."""
    assert sorted(["b", 10, "a", 2, 1.5], key=level_sort_key) == [1.5, 2, 10, "a", "b"]
