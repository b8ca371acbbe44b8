"""Engine and session factory built from settings (no module-level engine)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, *, sqlite_busy_timeout_ms: int = 30000) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE.

    Every SQLite transaction takes the write lock up front (``BEGIN IMMEDIATE``): a deferred
    read transaction that later writes can fail at once with SQLITE_BUSY in WAL mode, while
    an immediate one simply waits ``busy_timeout`` for its turn.
    """
    if not database_url.startswith("sqlite"):
        return create_engine(database_url, pool_pre_ping=True)
    engine = create_engine(
        database_url,
        connect_args={"check_same_thread": False, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (responses are built before it)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
