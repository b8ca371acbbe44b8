"""What one running app holds: settings, database, token issuer and event bus."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from v6flow_server.auth.ratelimit import DatabaseStorage, LimitsRateLimiter, RateLimiter
from v6flow_server.auth.tokens import TokenIssuer
from v6flow_server.blobs.store import BlobStore
from v6flow_server.events import EventBus
from v6flow_server.prefect_gateway import PrefectGateway
from v6flow_server.relay import RelayHub
from v6flow_server.settings import ServerSettings


def new_replica_id() -> str:
    """A name for this server process, unique among replicas: host, process id, random."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


class LocalStreams:
    """The node event streams open on this replica (touched only on the event loop).

    Presence itself lives in the database (:mod:`v6flow_server.services.presence`); this is only
    what the replica's heartbeat refreshes there.
    """

    def __init__(self) -> None:
        """Start with none."""
        self._open: dict[str, int] = {}

    def open(self, stream_id: str, node_id: int) -> None:
        """A stream of ``node_id`` opened."""
        self._open[stream_id] = node_id

    def close(self, stream_id: str) -> None:
        """A stream closed."""
        self._open.pop(stream_id, None)

    def snapshot(self) -> dict[str, int]:
        """Stream id → node id of every open stream."""
        return dict(self._open)


@dataclass
class AppState:
    """Kept on ``app.state.v6flow``; built by ``create_app`` and filled in by the lifespan."""

    settings: ServerSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    bus: EventBus
    issuer: TokenIssuer | None = None
    replica: str = field(default_factory=new_replica_id)
    streams: LocalStreams = field(default_factory=LocalStreams)
    relay: RelayHub = field(default_factory=RelayHub)
    #: Where large inputs and results go (None: ``blobs.backend`` is ``none``).
    blob_store: BlobStore | None = None
    #: Where central flows' Prefect requests go (None: ``prefect.api_url`` is not set).
    prefect: PrefectGateway | None = None
    rate_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        """Build the rate limiter of the token and recovery endpoints from the settings
        (counters in the database on PostgreSQL, shared by every replica)."""
        storage = (DatabaseStorage(self.engine) if self.engine.dialect.name == "postgresql"
                   else None)  # one SQLite process: counters in memory
        self.rate_limiter = LimitsRateLimiter(
            per_address=self.settings.rate_limit_per_address,
            per_username=self.settings.rate_limit_per_username, storage=storage)

    def token_issuer(self) -> TokenIssuer:
        """The issuer, available once start-up has read the JWT secret."""
        if self.issuer is None:  # only before the lifespan ran, i.e. never while serving
            raise RuntimeError("the server has not finished starting")
        return self.issuer
