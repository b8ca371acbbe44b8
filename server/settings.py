"""Settings of the server process (env prefix ``V6FLOW_SERVER_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    """Everything the server needs to start; read once at the entry point."""

    model_config = SettingsConfigDict(env_prefix="V6FLOW_SERVER_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///v6flow-server.sqlite",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user:pw@host/db.",
    )
    root_password: SecretStr | None = Field(
        default=None,
        description="Password of the user 'root' created on the first start (empty database).",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 signing key; when unset one is generated once and kept in the database.",
    )
    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=7601, ge=0, le=65535, description="TCP port to listen on.")
    access_token_minutes: int = Field(default=360, gt=0, description="Access token lifetime.")
    refresh_token_minutes: int = Field(default=2880, gt=0, description="Refresh token lifetime.")
    container_token_minutes: float = Field(
        default=7 * 24 * 60, gt=0,
        description=(
            "Upper bound on an algorithm container token's lifetime (default 7 days). The "
            "token already dies when its run finishes; this bounds a run that never finishes "
            "and a leaked token. A container cannot renew its token, so set it above the "
            "longest job you run (a central task's token must outlive all its subtasks)."
        ),
    )
    keepalive_seconds: float = Field(
        default=10.0, gt=0, description="Interval of the ': ping' comment on event streams."
    )
    shutdown_grace_seconds: int = Field(
        default=3, ge=0,
        description="On stop, how long open requests (event streams) may take before they are cut.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30000, ge=0, description="How long SQLite waits for a lock before failing."
    )
    log_level: str = Field(default="info", description="Log level (debug, info, warning, error).")

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        """Accept SQLite and PostgreSQL; plain ``postgresql://`` is routed to psycopg 3."""
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        """Only the four standard levels."""
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()
