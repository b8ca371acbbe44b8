"""Algorithm tools: what runs inside an algorithm container.

Contract-compatible with ``vantage6-algorithm-tools`` 4.15.2: ``wrap_algorithm`` is the
container entry point, ``@data``/``@algorithm_client``/``@metadata`` inject data, a client and
run metadata, and ``MockAlgorithmClient`` runs a whole federated computation in-process.

Depends only on the stdlib, httpx and pyjwt (pandas/pyarrow are imported when data is loaded):
never import prefect, fastapi, sqlalchemy or docker here.
"""

from v6flow.algorithm.client import AlgorithmClient
from v6flow.algorithm.decorators import RunMetaData, algorithm_client, data, metadata
from v6flow.algorithm.mock import MockAlgorithmClient
from v6flow.algorithm.wrap import wrap_algorithm

__all__ = [
    "AlgorithmClient",
    "MockAlgorithmClient",
    "RunMetaData",
    "algorithm_client",
    "data",
    "metadata",
    "wrap_algorithm",
]
