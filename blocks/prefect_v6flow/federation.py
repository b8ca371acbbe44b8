"""``Federation``: the one parameter every v6flow flow takes for *where* and *how* it runs.

It replaces the eight parameters each flow used to declare (``collaboration_id, server,
credentials_block, organizations, image, databases, retries, timeout_seconds``). A flow
resolves it once (:meth:`Federation.connect`) into a :class:`Connection`, whose
:meth:`Connection.run_partial` fans a partial out with those settings.

The connection to the server comes from, in this order:

1. ``server``: URL and login given in the parameter (ad-hoc runs, the demo);
2. ``credentials_block``: the name of a saved :class:`V6flowServerCredentials` (deployments);
3. ``collaboration_block``: a saved :class:`V6flowCollaboration` that holds credentials;
4. none of these, inside a node's algorithm container: the node proxy with the container
   token (the flow runs as a vantage6-style central task, :mod:`v6flow.algorithm.central`);
   the collaboration and the image then default to the container token's.

``collaboration_id``, ``organizations`` and ``databases`` left out are taken from
``collaboration_block`` when one is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from v6flow.algorithm.central import ContainerConnection, in_algorithm_container
from v6flow.prefect import AsyncClientFactory, run_partial

from .collaboration import V6flowCollaboration
from .credentials import V6flowServerCredentials

PositiveId = Annotated[int, Field(ge=1)]
BlockName = Annotated[str, Field(min_length=1, max_length=255)]


class ServerParameters(BaseModel):
    """Server and login given as a flow parameter (instead of a saved credentials Block).

    The password is a ``SecretStr``: Prefect records the flow run's parameters with it
    masked, and it is unwrapped only when the client logs in.
    """

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., pattern=r"^https?://", description="API root, ending in /api.")
    username: str = Field(..., min_length=1)
    password: SecretStr

    def credentials(self) -> V6flowServerCredentials:
        """The same as an (unsaved) credentials Block."""
        return V6flowServerCredentials(url=self.url, username=self.username,
                                       password=self.password)


class DatabaseRequest(BaseModel):
    """One database a task asks the nodes for."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="default", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    query: str | None = None
    sheet_name: str | None = None

    def wire(self) -> dict[str, Any]:
        """The ``databases[]`` item of ``POST /task``."""
        return self.model_dump(exclude_none=True)


class Federation(BaseModel):
    """Where a flow's partial functions run, and how (retries, timeout).

    Examples:
        >>> Federation(collaboration_id=1, credentials_block="v6flow-local")
        ... # doctest: +ELLIPSIS
        Federation(collaboration_id=1, ...)
    """

    model_config = ConfigDict(extra="forbid")

    collaboration_id: PositiveId | None = Field(
        default=None, description="Collaboration to run in (default: the collaboration "
        "Block's, or the container token's in a node container).")
    server: ServerParameters | None = Field(
        default=None, description="Server URL and login, for ad-hoc runs.")
    credentials_block: BlockName | None = Field(
        default=None, description="Name of a saved 'V6flow Server Credentials' Block.")
    collaboration_block: BlockName | None = Field(
        default=None, description="Name of a saved 'V6flow Collaboration' Block: its "
        "collaboration, organizations, databases and credentials are the defaults.")
    organizations: list[PositiveId] | None = Field(
        default=None, description="Organization ids; every member of the collaboration "
        "when omitted.")
    image: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="Algorithm image (default: the flow's own image).")
    databases: list[DatabaseRequest] | None = Field(
        default=None, description="Database requests (default [{\"label\": \"default\"}]).")
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        default=1, description="Retries per organization (a new server task each).")
    timeout_seconds: Annotated[float, Field(gt=0)] | None = Field(
        default=600.0, description="Per organization attempt; the server task is killed "
        "on expiry.")

    @model_validator(mode="after")
    def _one_login(self) -> Federation:
        if self.server is not None and self.credentials_block is not None:
            raise ValueError("give either 'server' or 'credentials_block', not both")
        return self

    async def connect(self, *, default_image: str) -> Connection:
        """Resolve the connection, the collaboration and the defaults (see the module
        docstring); loads the named Blocks from the Prefect API.

        Raises:
            ValueError: no way to log in, or no collaboration (outside a node container).
        """
        block = (await V6flowCollaboration.aload(self.collaboration_block)
                 if self.collaboration_block is not None else None)
        container = in_algorithm_container()
        source: AsyncClientFactory
        if self.server is not None:
            source = self.server.credentials()
        elif self.credentials_block is not None:
            source = await V6flowServerCredentials.aload(self.credentials_block)
        elif block is not None and block.credentials is not None:
            source = block.credentials
        elif container:
            source = ContainerConnection.from_environ()
        else:
            raise ValueError(
                "federation: give 'server', 'credentials_block' or a 'collaboration_block' "
                "with credentials (only a flow that runs as a central task in a node "
                "container may leave them all out)")
        identity = source.identity() if isinstance(source, ContainerConnection) else None
        collaboration_id = (self.collaboration_id
                            or (block.collaboration_id if block is not None else None)
                            or (identity.collaboration_id if identity is not None else None))
        if collaboration_id is None:
            raise ValueError("federation: give 'collaboration_id' (or a 'collaboration_block')")
        organizations = (self.organizations if self.organizations is not None
                         else block.organization_ids() if block is not None else None)
        databases = ([db.wire() for db in self.databases] if self.databases
                     else [dict(db) for db in block.databases] if block is not None
                     and block.databases else None)
        image = (self.image or (identity.image if identity is not None else None)
                 or default_image)
        return Connection(source=source, collaboration_id=int(collaboration_id), image=image,
                          organizations=organizations, databases=databases,
                          retries=self.retries, timeout_seconds=self.timeout_seconds)


@dataclass(frozen=True)
class Connection:
    """A resolved :class:`Federation`: how a flow runs partial functions.

    Attributes:
        source: makes the API clients (a credentials Block or the container connection).
        collaboration_id: the collaboration.
        image: the algorithm image of the partials.
        organizations: organization ids (None: every member).
        databases: ``databases[]`` of each task (None: ``[{"label": "default"}]``).
        retries: retries per organization.
        timeout_seconds: per organization attempt.
    """

    source: AsyncClientFactory
    collaboration_id: int
    image: str
    organizations: list[int] | None = None
    databases: list[dict[str, Any]] | None = None
    retries: int = 1
    timeout_seconds: float | None = 600.0

    async def run_partial(self, method: str, *, kwargs: dict[str, Any] | None = None,
                          args: Sequence[Any] = (), organizations: Sequence[int] | None = None,
                          **options: Any) -> dict[int, Any]:
        """:func:`v6flow.prefect.run_partial` with this federation's settings.

        Args:
            method: the partial function's name.
            kwargs: its keyword arguments.
            args: its positional arguments.
            organizations: overrides the federation's organizations (e.g. a second round
                only at the organizations that answered the first).
            **options: further ``run_partial`` options (``min_responses``, ``cache``, ...).

        Returns:
            ``{organization_id: result}``.
        """
        chosen = list(organizations) if organizations is not None else self.organizations
        return await run_partial(
            self.source, self.collaboration_id, method, image=self.image,
            organizations=chosen, args=args, kwargs=kwargs, databases=self.databases,
            retries=self.retries, timeout_seconds=self.timeout_seconds, **options)
