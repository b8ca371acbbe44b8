"""Settings of the server process: a YAML file and ``V6FLOW_SERVER_<FIELD>`` variables.

``v6flow server start --config server.yaml`` reads the file with pydantic-settings'
``YamlConfigSettingsSource`` (see ``v6flow/_config.py``); its keys are the field names below.
Precedence, highest first: command-line options (``--host``, ``--port``), environment
variables ``V6FLOW_SERVER_<FIELD>``, the YAML file, the defaults. Sections (nested models), if
settings grow some, are YAML mappings and ``V6FLOW_SERVER_<SECTION>__<FIELD>`` variables.
Unknown keys are refused, so a typo is reported instead of silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmtpSettings(BaseModel):
    """How the server sends mail (recovery tokens); env ``V6FLOW_SERVER_SMTP__<FIELD>``."""

    host: str | None = Field(
        default=None, description="SMTP server; unset: the server sends no mail (recovery "
                                  "requests are answered as usual but nothing is sent).")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    username: str | None = Field(default=None, description="SMTP login; unset: no login.")
    password: SecretStr | None = Field(default=None, description="SMTP password.")
    sender: str = Field(default="v6flow <noreply@localhost>",
                        description="The From address of every mail.")
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="starttls: upgrade a plain connection; ssl: TLS from the start (usually "
                    "port 465); none: plain text (only for a relay on the same host).")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Socket timeout per mail.")


class BlobSettings(BaseModel):
    """Where large inputs and results are kept; env ``V6FLOW_SERVER_BLOBS__<FIELD>``.

    With a store, ``POST /blobstream`` streams a payload into it and answers its UUID, which a
    task input or a run result then names; ``GET /blobstream/<uuid>`` streams it back. No
    payload is ever held whole in server memory (docs/deploy.md, "Blob storage").
    """

    backend: Literal["none", "local", "s3"] = Field(
        default="none",
        description="none: inputs and results travel inline (base64 in JSON, bounded by the "
                    "body limits); local: a folder of this server (one server process, or "
                    "replicas sharing the folder); s3: an S3-compatible object store (the "
                    "scale-out choice).")
    path: Path | None = Field(
        default=None,
        description="Folder of the local store (created with mode 0700). Default: beside the "
                    "SQLite file ('<database>.blobs'), or 'v6flow-server-blobs' in the working "
                    "directory for PostgreSQL.")
    s3_bucket: str | None = Field(default=None, description="Bucket of the s3 store.")
    s3_prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. 'v6flow/'.")
    s3_endpoint: str | None = Field(
        default=None, description="Endpoint URL of an S3-compatible service (MinIO, Ceph, ...); "
                                  "unset: AWS.")
    s3_region: str = Field(default="us-east-1", description="Region of the bucket.")
    s3_access_key_id: SecretStr | None = Field(
        default=None, description="Access key id; unset: the usual AWS environment/profile.")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="Secret key.")
    s3_allow_http: bool = Field(
        default=False, description="Allow a plain-http endpoint (a store on this host only).")
    threshold_bytes: int = Field(
        default=1024 * 1024, ge=0,
        description="v6flow clients and nodes send an input or result whose inline (base64) "
                    "text would be longer than this to the store, and smaller ones inline "
                    "(GET /blobstream/status tells them). vantage6 4.x clients and nodes send "
                    "every input and result to the store.")
    max_blob_bytes: int = Field(
        default=4 * 1024 ** 3, gt=0,
        description="Largest upload (POST /blobstream); a larger one is answered 413.")
    unreferenced_ttl_seconds: float = Field(
        default=3600.0, gt=0,
        description="An upload that no task input or run result names after this long is "
                    "deleted (and so is one whose upload never finished).")
    sweep_interval_seconds: float = Field(
        default=60.0, gt=0,
        description="How often the server deletes released and expired blobs (a deleted "
                    "task's blobs go at once; this catches what a crash left).")

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> BlobSettings:
        """The s3 backend cannot work without a bucket."""
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("blobs.s3_bucket is required with blobs.backend=s3")
        return self


class PrefectSettings(BaseModel):
    """The Prefect API that central flows report to; env ``V6FLOW_SERVER_PREFECT__<FIELD>``.

    With ``api_url`` set, a flow that runs as a central task in a node container sends its
    flow run, task runs, logs, artifacts and events through the node proxy to
    ``/api/prefect/...`` of this server, which checks the container token and forwards what a
    flow run needs to this API (docs/central-tasks.md). One Prefect API serves the whole
    server; flow runs carry the tags ``v6flow.collaboration:<id>``, ``v6flow.job:<id>`` and
    ``v6flow.task:<id>``, so the Prefect UI can filter them per collaboration.
    """

    api_url: str | None = Field(
        default=None,
        description="Base URL of the Prefect API, e.g. 'http://127.0.0.1:4200/api'. Unset: "
                    "central flows run without a Prefect API (their run log says so).")
    ui_url: str | None = Field(
        default=None,
        description="Prefect UI root that run logs link to (default: api_url without its "
                    "trailing '/api').")
    api_key: SecretStr | None = Field(
        default=None,
        description="Sent to the Prefect API as 'Authorization: Bearer <key>' (a Prefect "
                    "Cloud key, or a reverse proxy's). Container tokens are never forwarded.")
    auth_string: SecretStr | None = Field(
        default=None,
        description="'user:password' sent as HTTP basic authentication (a Prefect server "
                    "started with PREFECT_SERVER_API_AUTH_STRING).")
    timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of one request to the Prefect API.")
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0,
        description="Largest body a container may send to /api/prefect (a batch of logs or "
                    "events, a table artifact).")

    @field_validator("api_url", "ui_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """An http(s) URL without a trailing slash."""
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_authorization(self) -> PrefectSettings:
        """Only one Authorization header can be sent."""
        if self.api_key is not None and self.auth_string is not None:
            raise ValueError("set prefect.api_key or prefect.auth_string, not both")
        return self

    def ui_root(self) -> str | None:
        """Where the Prefect UI is (``ui_url``, else ``api_url`` without ``/api``)."""
        if self.ui_url is not None or self.api_url is None:
            return self.ui_url
        return self.api_url.removesuffix("/api")


class ServerSettings(BaseSettings):
    """Everything the server needs to start; read once at the entry point."""

    model_config = SettingsConfigDict(env_prefix="V6FLOW_SERVER_", env_nested_delimiter="__",
                                      extra="forbid")

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
    max_tasks_per_job: int = Field(
        default=1000, ge=1, le=1_000_000,
        description=(
            "Most tasks one job may hold (its first task and every subtask below it). An "
            "algorithm that creates subtasks without end (or a flow whose subtasks start the "
            "flow again) is refused at this count instead of filling every node; v4 has no "
            "bound."))
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
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="SQLite's synchronous setting (WAL mode): NORMAL syncs at checkpoints (a "
                    "server crash loses nothing, a power cut may lose the last commits); FULL "
                    "syncs every commit (slower writes).")
    log_level: str = Field(default="info", description="Log level (debug, info, warning, error).")
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For header "
                    "names the client. Unset: the peer address of the connection is the client "
                    "(rate limits key on it; no header can change it).")

    prefect_ui_url: str | None = Field(
        default=None,
        description="Root address of the Prefect UI (e.g. https://prefect.example.org), for "
                    "the web UI's links from a task to the flow run that created it "
                    "(GET /api/ui/config). Each person may still set their own address on "
                    "their account page. Unset: no link unless they do.")

    # accounts: passwords, second factor, lockout, recovery, rate limits
    password_min_length: int = Field(
        default=8, ge=8, le=1024, description="Shortest password a user may set.")
    two_factor_auth: bool = Field(
        default=False,
        description="Require a TOTP second factor of every user (v4's name). A user without "
                    "one is enrolled on the next login with the right password.")
    two_factor_issuer: str = Field(
        default="v6flow", min_length=1, max_length=64,
        description="Issuer name authenticator apps show next to the account.")
    otp_encryption_key: SecretStr | None = Field(
        default=None,
        description="Key (any text) that encrypts the users' TOTP secrets in the database; "
                    "unset: a key is generated once and kept in the database. Changing it "
                    "invalidates every enrolment (users then reset their second factor).")
    max_failed_attempts: int = Field(
        default=5, ge=1,
        description="Failed logins (wrong password or code) within inactivation_in_minutes "
                    "that lock the account (v4's name).")
    inactivation_in_minutes: float = Field(
        default=10.0, gt=0,
        description="The window in which failed logins are counted, and how long the account "
                    "then stays locked (v4's name).")
    email_token_validity_minutes: float = Field(
        default=60.0, gt=0,
        description="How long a password or second-factor reset token from a mail is valid.")
    between_user_emails_minutes: float = Field(
        default=5.0, ge=0,
        description="At most one recovery mail of a kind per user within this time (v4's name).")
    rate_limit_per_address: str = Field(
        default="120/minute",
        description="Requests one client address may send to each token/recovery endpoint "
                    "(/token/user, /token/node, /token/refresh, /recover/*), as 'N/period'; "
                    "several separated by ';'. Requests through a node's proxy count for the "
                    "node's address.")
    rate_limit_per_username: str = Field(
        default="30/minute",
        description="Requests naming one username or e-mail address (login, recovery) that "
                    "are accepted, from all addresses together, as 'N/period'.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings,
                               description="Outgoing mail (recovery tokens).")
    blobs: BlobSettings = Field(default_factory=BlobSettings,
                                description="Blob store of large inputs and results.")
    prefect: PrefectSettings = Field(
        default_factory=PrefectSettings,
        description="The Prefect API that central flows report to (/api/prefect).")
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
                    "only; this bounds an inline result (a blob store takes larger ones).",
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
                    "fails the runs of nodes offline past node_offline_fail_seconds. A "
                    "replica that stops refreshing for three intervals is taken for dead: "
                    "its nodes go offline unless they stream to another replica.",
    )

    # event bus (push to nodes and users)
    event_bus: Literal["auto", "memory", "postgres"] = Field(
        default="auto",
        description="How events reach event streams. memory: within this process only (one "
                    "server); postgres: LISTEN/NOTIFY on the database, for several replicas "
                    "on one PostgreSQL database; auto: postgres on PostgreSQL, else memory.",
    )
    event_queue_size: int = Field(
        default=1000, ge=2, le=1_000_000,
        description="Events one stream may have waiting; a stream that falls further behind "
                    "is sent 'sync' (its reader re-reads its state) instead of the backlog.",
    )
    event_retention_seconds: float = Field(
        default=300.0, ge=10,
        description="How long published events are kept in the database (postgres bus); a "
                    "replica's listener further behind than this makes its streams re-sync.",
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

    @field_validator("rate_limit_per_address", "rate_limit_per_username")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """A limit in the ``limits`` notation, e.g. ``10/minute`` or ``5/second;100/hour``."""
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError("must look like '10/minute' (several separated by ';')") from exc
        return value

    @model_validator(mode="after")
    def _presence_faster_than_cutoff(self) -> ServerSettings:
        """The presence job must run several times within the offline cutoff."""
        if self.presence_interval_seconds * 2 > self.node_offline_fail_seconds:
            raise ValueError("presence_interval_seconds must be at most half of "
                             "node_offline_fail_seconds")
        return self

    @model_validator(mode="after")
    def _bus_fits_database(self) -> ServerSettings:
        """The postgres bus needs a PostgreSQL database."""
        if self.event_bus == "postgres" and not self.uses_postgres():
            raise ValueError("event_bus 'postgres' needs a postgresql+psycopg:// database_url")
        return self

    def uses_postgres(self) -> bool:
        """Whether ``database_url`` names a PostgreSQL database."""
        return self.database_url.startswith("postgresql+psycopg://")

    def bus_kind(self) -> Literal["memory", "postgres"]:
        """The event bus to build (``auto`` resolved)."""
        if self.event_bus == "auto":
            return "postgres" if self.uses_postgres() else "memory"
        return self.event_bus

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

    def blob_dir(self) -> Path:
        """The folder of the local blob store (``blobs.path`` or beside the database)."""
        if self.blobs.path is not None:
            return self.blobs.path
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and len(self.database_url) > len(prefix):
            database = self.database_url[len(prefix):].split("?", 1)[0]
            if database and database != ":memory:":
                return Path(database + ".blobs")
        return Path("v6flow-server-blobs")

    @field_validator("prefect_ui_url")
    @classmethod
    def _http_address(cls, value: str | None) -> str | None:
        """An http(s) address without trailing slash; empty text is unset."""
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("must be an http:// or https:// address without query")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        """Only the four standard levels."""
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()
