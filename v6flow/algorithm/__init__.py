"""Algorithm tools: what runs inside an algorithm container.

Contract-compatible with ``vantage6-algorithm-tools`` 4.15.2: ``wrap_algorithm`` is the
container entry point, ``@data``/``@algorithm_client``/``@metadata`` inject data, a client and
run metadata, and ``MockAlgorithmClient`` runs a whole federated computation in-process.

Depends only on the stdlib, httpx and pyjwt (pandas/pyarrow are imported when data is loaded):
never import prefect, fastapi, sqlalchemy or docker here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from v6flow.algorithm.decorators import RunMetaData, algorithm_client, data, metadata
from v6flow.algorithm.disclosure import (
    MIN_CELL_COUNT_ENV,
    is_small,
    min_cell_count_from_env,
    suppress_counts,
)
from v6flow.algorithm.wrap import wrap_algorithm

if TYPE_CHECKING:
    from v6flow.algorithm.client import AlgorithmClient
    from v6flow.algorithm.mock import MockAlgorithmClient

# The clients pull in httpx (~0.3-0.7 s of import in a container): a partial that only
# reads data never pays for it. They are imported on first access.
_LAZY = {
    "AlgorithmClient": "v6flow.algorithm.client",
    "MockAlgorithmClient": "v6flow.algorithm.mock",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'v6flow.algorithm' has no attribute {name!r}")

__all__ = [
    "MIN_CELL_COUNT_ENV",
    "AlgorithmClient",
    "MockAlgorithmClient",
    "RunMetaData",
    "algorithm_client",
    "data",
    "is_small",
    "metadata",
    "min_cell_count_from_env",
    "suppress_counts",
    "wrap_algorithm",
]
