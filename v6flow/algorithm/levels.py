"""Category levels as JSON scalars, for partials that group rows by a column's values."""

from __future__ import annotations

from typing import Any


def json_level(value: Any) -> Any:
    """A level as a JSON scalar: numpy scalars unwrapped, booleans and integral floats as ints."""
    import numpy as np  # lazily: pandas (and so numpy) is there whenever levels are made

    item = value.item() if isinstance(value, np.generic) else value
    if isinstance(item, bool):
        return int(item)
    if isinstance(item, float) and item.is_integer():
        return int(item)
    return item


def level_sort_key(value: Any) -> tuple[int, Any]:
    """Sort key for mixed levels: numbers (numerically) before texts."""
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))
