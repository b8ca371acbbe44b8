"""Settings of the server process (env prefix ``V6FLOW_SERVER_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
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
        description="HS256 signing key. When unset, the key is read from jwt_secret_file "
                    "(generated there on the first start); it is never kept in the database.",
    )
    jwt_secret_file: Path | None = Field(
        default=None,
        description="File holding the signing key (created with mode 0600 when missing). "
                    "Default: beside the SQLite file ('<database>.jwt-secret'), or "
                    "'v6flow-server.jwt-secret' in the working directory for PostgreSQL. "
                    "Several replicas must share one key: set jwt_secret or a shared file.",
    )
    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=7601, ge=0, le=65535, description="TCP port to listen on.")
    access_token_minutes: int = Field(default=360, gt=0, description="Access token lifetime.")
    refresh_token_minutes: int = Field(default=2880, gt=0, description="Refresh token lifetime.")
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
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0,
        description="Largest request body of any route without its own limit; a larger one "
                    "is answered 413 before it is read.",
    )
    max_task_body_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0,
        description="Largest POST /task body (inputs of all organizations together); applies "
                    "to callers with a valid user or container token, others get "
                    "max_body_bytes.",
    )
    max_result_body_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0,
        description="Largest PATCH /run/<id> body (a run's result and log), for node tokens "
                    "only; until results move to a blob store, this bounds a result.",
    )
    max_log_bytes: int = Field(
        default=1024 * 1024, gt=0,
        description="Most bytes of a run's stored log; beyond it the oldest part is dropped "
                    "and the log says so.",
    )
    max_log_line_bytes: int = Field(
        default=16 * 1024, gt=0,
        description="Longest live log line (POST /run/<id>/log); longer lines are cut.",
    )
    page_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0,
        description="Run and result lists are streamed, this many bytes of stored "
                    "input/result/log read from the database at a time.",
    )
    node_offline_fail_seconds: float = Field(
        default=900.0, gt=0,
        description="A node without an event stream for this long has its started runs "
                    "(initializing, active) failed with the reason in their log.",
    )
    presence_interval_seconds: float = Field(
        default=30.0, gt=0,
        description="How often the server refreshes the presence of its connected nodes and "
                    "fails the runs of nodes offline past node_offline_fail_seconds.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        """Accept SQLite and PostgreSQL; plain ``postgresql://`` is routed to psycopg 3."""
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        return value

    @model_validator(mode="after")
    def _presence_faster_than_cutoff(self) -> ServerSettings:
        """The presence job must run several times within the offline cutoff."""
        if self.presence_interval_seconds * 2 > self.node_offline_fail_seconds:
            raise ValueError("presence_interval_seconds must be at most half of "
                             "node_offline_fail_seconds")
        return self

    def secret_file(self) -> Path:
        """Where the JWT signing key is kept when ``jwt_secret`` is not set."""
        if self.jwt_secret_file is not None:
            return self.jwt_secret_file
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and len(self.database_url) > len(prefix):
            database = self.database_url[len(prefix):].split("?", 1)[0]
            if database and database != ":memory:":
                return Path(database + ".jwt-secret")
        return Path("v6flow-server.jwt-secret")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        """Only the four standard levels."""
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()
