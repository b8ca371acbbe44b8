"""The parameter every flow shares (``federation``) and how a flow connects with it.

Every flow takes ``federation: Federation | None``: where its partial functions run (server
login or saved Blocks, collaboration, organizations, image, databases) and how (retries,
timeout). ``None`` is all defaults, which only a flow running as a central task in a node
container can use (:mod:`v6flow.algorithm.central`). See :mod:`prefect_v6flow.federation` for the
order in which the connection is found.
"""

from __future__ import annotations

from prefect_v6flow import Connection, DatabaseRequest, Federation, ServerParameters
from prefect_v6flow.federation import PositiveId

__all__ = ["Connection", "DatabaseRequest", "Federation", "PositiveId", "ServerParameters",
           "resolve_connection"]


async def resolve_connection(federation: Federation | None, *, image: str) -> Connection:
    """The flow's way to the federation; ``image`` is the flow's own default image.

    Raises:
        ValueError: no login given and not in an algorithm container, or no collaboration.
    """
    return await (federation or Federation()).connect(default_image=image)
