"""SQLAlchemy 2 ORM models (columns and relationships only; rules live in services/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from v6flow.wire import utcnow


class Base(DeclarativeBase):
    """Declarative base of every table."""


member_table = Table(
    "member",
    Base.metadata,
    Column("collaboration_id", ForeignKey("collaboration.id", ondelete="CASCADE"),
           primary_key=True),
    Column("organization_id", ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True),
)
role_rule_table = Table(
    "role_rule",
    Base.metadata,
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
    Column("rule_id", ForeignKey("rule.id", ondelete="CASCADE"), primary_key=True),
)
user_role_table = Table(
    "user_role",
    Base.metadata,
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
)
study_member_table = Table(
    "study_member",
    Base.metadata,
    Column("study_id", ForeignKey("study.id", ondelete="CASCADE"), primary_key=True),
    Column("organization_id", ForeignKey("organization.id", ondelete="CASCADE"),
           primary_key=True),
)
user_rule_table = Table(
    "user_rule",
    Base.metadata,
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("rule_id", ForeignKey("rule.id", ondelete="CASCADE"), primary_key=True),
)


class ServerSetting(Base):
    """Key/value state the server keeps for itself (e.g. the generated JWT secret)."""

    __tablename__ = "server_setting"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Organization(Base):
    """A party of the federation."""

    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    domain: Mapped[str | None] = mapped_column(String(255))
    address1: Mapped[str | None] = mapped_column(String(255))
    address2: Mapped[str | None] = mapped_column(String(255))
    zipcode: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(255))
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    collaborations: Mapped[list[Collaboration]] = relationship(
        secondary=member_table, back_populates="organizations"
    )
    studies: Mapped[list[Study]] = relationship(
        secondary=study_member_table, back_populates="organizations"
    )


class Collaboration(Base):
    """Organizations that analyse together."""

    __tablename__ = "collaboration"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    organizations: Mapped[list[Organization]] = relationship(
        secondary=member_table, back_populates="collaborations", order_by="Organization.id"
    )
    studies: Mapped[list[Study]] = relationship(
        back_populates="collaboration", order_by="Study.id"
    )


class Study(Base):
    """Some organizations of one collaboration that analyse together (a subset of it)."""

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaboration.id"), index=True)
    collaboration: Mapped[Collaboration] = relationship(back_populates="studies")
    organizations: Mapped[list[Organization]] = relationship(
        secondary=study_member_table, back_populates="studies", order_by="Organization.id"
    )


class Authenticatable(Base):
    """Shared id space and presence of users and nodes."""

    __tablename__ = "authenticatable"
    #: SQLite: ids never reused (subclass tables may name constraints of their own).
    __table_args__: Any = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(64))
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str | None] = mapped_column(String(16))
    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": "authenticatable"}  # noqa: RUF012


class Node(Authenticatable):
    """The daemon of one organization in one collaboration."""

    __tablename__ = "node"
    __table_args__ = (UniqueConstraint("organization_id", "collaboration_id"),)
    id: Mapped[int] = mapped_column(ForeignKey("authenticatable.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaboration.id"))
    organization: Mapped[Organization] = relationship()
    collaboration: Mapped[Collaboration] = relationship()
    __mapper_args__ = {"polymorphic_identity": "node"}  # noqa: RUF012


class RetiredAccount(Authenticatable):
    """The id of a deleted user, kept (no table of its own) so it is never handed out again.

    SQLite gives a new row the highest id + 1: deleting the newest user would let the next
    user or node inherit its id, and a user's unexpired token would then act as that account.
    """

    __mapper_args__ = {"polymorphic_identity": "retired"}  # noqa: RUF012


class Rule(Base):
    """One permission: operation on a resource within a scope."""

    __tablename__ = "rule"
    __table_args__ = (UniqueConstraint("name", "operation", "scope"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)


class Role(Base):
    """A named bundle of rules."""

    __tablename__ = "role"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))
    is_default_role: Mapped[bool] = mapped_column(Boolean, default=False)
    rules: Mapped[list[Rule]] = relationship(secondary=role_rule_table)


class User(Authenticatable):
    """A person who logs in with a password."""

    __tablename__ = "user"
    id: Mapped[int] = mapped_column(ForeignKey("authenticatable.id"), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    firstname: Mapped[str | None] = mapped_column(String(255))
    lastname: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    failed_login_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_login_attempt: Mapped[datetime | None] = mapped_column(DateTime)
    #: the first failed login of the window being counted (lockout)
    failed_login_since: Mapped[datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    #: the TOTP secret, encrypted (server/v6flow_server/auth/otp.py); never serialized
    otp_secret: Mapped[str | None] = mapped_column(Text)
    #: False until the first login with a valid code completes the enrolment
    otp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False,
                                                server_default=false())
    #: the last 30-second step a code was accepted for (no replay)
    otp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    organization: Mapped[Organization] = relationship()
    roles: Mapped[list[Role]] = relationship(secondary=user_role_table)
    rules: Mapped[list[Rule]] = relationship(secondary=user_rule_table)
    __mapper_args__ = {"polymorphic_identity": "user"}  # noqa: RUF012


class AccountToken(Base):
    """A mailed single-use token that resets a password or a second factor (hash only)."""

    __tablename__ = "account_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class Task(Base):
    """A request to run an algorithm image at some organizations."""

    __tablename__ = "task"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - ids never reused
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str] = mapped_column(String(1024))
    collaboration_id: Mapped[int] = mapped_column(ForeignKey("collaboration.id"))
    study_id: Mapped[int | None] = mapped_column(ForeignKey("study.id"), index=True)
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"), index=True)
    init_org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    init_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    algorithm_store_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    runs: Mapped[list[Run]] = relationship(
        back_populates="task", order_by="Run.id", cascade="all, delete-orphan"
    )
    databases: Mapped[list[TaskDatabase]] = relationship(
        order_by="TaskDatabase.id", cascade="all, delete-orphan"
    )


class TaskDatabase(Base):
    """One database (label + parameters) a task asked for."""

    __tablename__ = "task_database"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))
    database: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[str] = mapped_column(Text, default="{}")


class Run(Base):
    """The execution of a task at one organization."""

    __tablename__ = "run"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - ids never reused
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    # Large text (up to the body limits) is loaded only when read: listing runs or deriving
    # a task's status must not pull every input, result and log into memory.
    input: Mapped[str | None] = mapped_column(Text, deferred=True)
    result: Mapped[str | None] = mapped_column(Text, deferred=True)
    log: Mapped[str | None] = mapped_column(Text, deferred=True)
    status: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    cleanup_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: ``input`` names a blob (its UUID); v4's name, whose run view is about the input.
    blob_storage_used: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``result`` names a blob (its UUID); the result view's ``blob_storage_used``.
    result_in_blob: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    task: Mapped[Task] = relationship(back_populates="runs")
    ports: Mapped[list[AlgorithmPort]] = relationship(
        back_populates="run", order_by="AlgorithmPort.port", cascade="all, delete-orphan",
        passive_deletes=True, lazy="selectin",
    )


class AlgorithmPort(Base):
    """A port a run's container listens on (``EXPOSE`` + ``LABEL p<port>`` of its image)."""

    __tablename__ = "algorithm_port"
    __table_args__ = (UniqueConstraint("run_id", "port"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    port: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(128))
    run: Mapped[Run] = relationship(back_populates="ports")


class Blob(Base):
    """A payload in the blob store: who uploaded it, its size, and which run field names it.

    Uploading (``size`` None) → stored → referenced (``run_id`` and ``field`` set) → dead
    (released by a deleted run, or unreferenced too long), then its bytes and its row go.
    """

    __tablename__ = "blob"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the UUID, lower case
    uploader: Mapped[str] = mapped_column(String(64))  # "user:<id>", "node:<id>", "task:<id>"
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL"), index=True)
    field: Mapped[str | None] = mapped_column(String(8))  # "input" or "result"
    dead: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(),
                                       index=True)


class AuditEntry(Base):
    """One security event: who did what to which object, when and from where (no secrets)."""

    __tablename__ = "audit_entry"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_name: Mapped[str | None] = mapped_column(String(255))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    client_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text, default="{}")


class EventRow(Base):
    """One published event, kept for ``event_retention_seconds`` (PostgreSQL event bus).

    ``NOTIFY`` carries only the row id; every replica reads the body from here, so an event
    of any size (``algorithm_log`` lines) travels between replicas.
    """

    __tablename__ = "event"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    name: Mapped[str] = mapped_column(String(32))
    collaboration_id: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[str] = mapped_column(Text)


class NodeStream(Base):
    """An open event stream of a node on one server replica, refreshed by its heartbeat.

    A node is online while it has a row whose ``seen_at`` is recent (see
    :mod:`v6flow_server.services.presence`); a replica that dies stops refreshing its rows, and
    the other replicas remove them.
    """

    __tablename__ = "node_stream"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("authenticatable.id", ondelete="CASCADE"),
                                         index=True)
    replica: Mapped[str] = mapped_column(String(64), index=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class RateLimitCounter(Base):
    """One window counter of the rate limiter, shared by the replicas (PostgreSQL)."""

    __tablename__ = "rate_limit_counter"
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
