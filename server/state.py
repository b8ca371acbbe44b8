"""What one running app holds: settings, database, token issuer and event bus."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.auth.ratelimit import LimitsRateLimiter, RateLimiter
from server.auth.tokens import TokenIssuer
from server.blobs.store import BlobStore
from server.events import EventBus
from server.settings import ServerSettings


class NodeStreams:
    """How many event streams each node has open (touched only on the event loop)."""

    def __init__(self) -> None:
        """Start with none."""
        self._counts: dict[int, int] = {}

    def join(self, node_id: int) -> None:
        """A stream of ``node_id`` opened."""
        self._counts[node_id] = self._counts.get(node_id, 0) + 1

    def connected(self) -> frozenset[int]:
        """The nodes with at least one open stream."""
        return frozenset(self._counts)

    def leave(self, node_id: int) -> bool:
        """A stream closed; True when it was the node's last one."""
        left = self._counts.get(node_id, 1) - 1
        if left <= 0:
            self._counts.pop(node_id, None)
            return True
        self._counts[node_id] = left
        return False


@dataclass
class AppState:
    """Kept on ``app.state.v6flow``; built by ``create_app`` and filled in by the lifespan."""

    settings: ServerSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    bus: EventBus
    issuer: TokenIssuer | None = None
    node_streams: NodeStreams = field(default_factory=NodeStreams)
    #: Where large inputs and results go (None: ``blobs.backend`` is ``none``).
    blob_store: BlobStore | None = None
    rate_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        """Build the rate limiter of the token and recovery endpoints from the settings."""
        self.rate_limiter = LimitsRateLimiter(
            per_address=self.settings.rate_limit_per_address,
            per_username=self.settings.rate_limit_per_username)

    def token_issuer(self) -> TokenIssuer:
        """The issuer, available once start-up has read the JWT secret."""
        if self.issuer is None:  # only before the lifespan ran, i.e. never while serving
            raise RuntimeError("the server has not finished starting")
        return self.issuer
