"""The node proxy and the container token, as an algorithm container sees them.

Used by :mod:`v6flow.algorithm.central` (a flow run as the central task) and by the flows'
``Federation`` (``prefect_v6flow.federation``) to reach the federation from inside a container.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from v6flow.algorithm._env import ContainerIdentity, read_token, require_env

if TYPE_CHECKING:
    from v6flow.client import AsyncClient


def in_algorithm_container(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a node's algorithm container (the contract env is set)."""
    env = os.environ if environ is None else environ
    return all(env.get(name) for name in ("TOKEN_FILE", "HOST"))


@dataclass(frozen=True)
class ContainerConnection:
    """The node proxy and the container token: a client source for ``run_partial``.

    Matches :class:`v6flow.prefect.tasks.AsyncClientFactory` (``get_async_client()``), like
    the credentials Block does for a researcher.
    """

    base_url: str
    token: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ContainerConnection:
        """Read ``HOST``, ``PORT``, ``API_PATH`` and ``TOKEN_FILE`` (already decoded).

        Raises:
            MissingEnvironment: one of them is not set.
        """
        env = dict(os.environ if environ is None else environ)
        host, port = require_env("HOST", env), env.get("PORT", "")
        base = f"{host}:{port}" if port else host
        return cls(base_url=base + env.get("API_PATH", ""),
                   token=read_token(require_env("TOKEN_FILE", env)))

    def get_async_client(self) -> AsyncClient:
        """A new client on the proxy with the container token; the caller closes it.

        It never encrypts: in an encrypted collaboration the node proxy encrypts subtask
        inputs and decrypts their results (the container holds no key).
        """
        from v6flow.client import AsyncClient

        return AsyncClient(self.base_url, token=self.token, by_node_proxy=True)

    def identity(self) -> ContainerIdentity:
        """What the container token says (task, collaboration, image...)."""
        return ContainerIdentity.from_token(self.token)

    def __repr__(self) -> str:  # never print the token
        return f"ContainerConnection(base_url={self.base_url!r})"
