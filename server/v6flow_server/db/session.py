"""Engine and session factory built from settings (no module-level engine)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

#: Execution option of a transaction that only reads (``session.connection(execution_options=
#: {READ_ONLY_OPTION: True})`` before its first statement): on SQLite it begins deferred,
#: without the write lock, and runs beside the writers (WAL). Writing in it is a bug.
READ_ONLY_OPTION = "v6flow_read_only"

#: Connections kept open per PostgreSQL engine (and opened beyond it under load): the
#: request threadpool has 40 threads; every request holds one connection for its transaction.
PG_POOL_SIZE = 20
PG_MAX_OVERFLOW = 20


class LockingConnection(sqlite3.Connection):
    """A sqlite3 connection whose transactions take its engine's writer lock.

    SQLite has one writer at a time. Without the lock, the threads of one process waiting for
    it poll SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms between tries: under a few
    concurrent requests most of the time went to sleeping. With it they queue on a lock and
    the next one starts the moment the previous transaction ends; the busy timeout still
    covers other processes (``v6flow server import``). Waiting longer than the busy timeout
    fails as SQLite would (``database is locked``), never hangs. Each engine makes its own
    subclass with its lock (:func:`_connection_class`).
    """

    writer_lock: threading.Lock
    lock_timeout: float
    holds_lock = False

    def begin_immediate(self) -> None:
        """Take the engine's lock, then SQLite's write lock (``BEGIN IMMEDIATE``)."""
        if not self.holds_lock:
            if not self.writer_lock.acquire(timeout=self.lock_timeout):
                raise sqlite3.OperationalError("database is locked")
            self.holds_lock = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self.holds_lock:
            self.holds_lock = False
            self.writer_lock.release()

    def commit(self) -> None:
        """Commit, then let the next transaction of this process start."""
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        """Roll back, then let the next transaction of this process start."""
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        """Close (a transaction still open ends with it)."""
        try:
            super().close()
        finally:
            self._release()


def _connection_class(timeout_s: float) -> type[LockingConnection]:
    """A :class:`LockingConnection` subclass with a lock of its own (one per engine)."""
    return type("EngineConnection", (LockingConnection,),
                {"writer_lock": threading.Lock(), "lock_timeout": timeout_s})


def make_engine(database_url: str, *, sqlite_busy_timeout_ms: int = 30000,
                sqlite_synchronous: str = "NORMAL") -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE.

    Every SQLite transaction takes the write lock up front (``BEGIN IMMEDIATE``): a deferred
    read transaction that later writes can fail at once with SQLITE_BUSY in WAL mode, while
    an immediate one simply waits its turn (the threads of this process on an in-process
    lock, see :class:`LockingConnection`; other processes ``busy_timeout``).

    ``sqlite_synchronous``: ``NORMAL`` (default) syncs the WAL at checkpoints, not at every
    commit: a crash of the server loses nothing, a power cut may lose the last transactions
    but never corrupts the file (SQLite's recommended setting with WAL). ``FULL`` syncs every
    commit.
    """
    if not database_url.startswith("sqlite"):
        return create_engine(database_url, pool_pre_ping=True, pool_size=PG_POOL_SIZE,
                             max_overflow=PG_MAX_OVERFLOW)
    if sqlite_synchronous.upper() not in ("NORMAL", "FULL"):
        raise ValueError(f"sqlite_synchronous must be NORMAL or FULL, not {sqlite_synchronous!r}")
    factory = _connection_class(sqlite_busy_timeout_ms / 1000)
    engine = create_engine(
        database_url,
        connect_args={"check_same_thread": False, "isolation_level": None,
                      "factory": factory},
        # One connection per request thread: the default pool (5 + 10 overflow) made busy
        # threads open and close connections (each with its PRAGMAs) under load.
        pool_size=40, max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous.upper()}")
        cursor.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")  # a snapshot; it never writes, so never waits
            return
        dbapi_conn = conn.connection.dbapi_connection
        if isinstance(dbapi_conn, LockingConnection):
            dbapi_conn.begin_immediate()
        else:  # a connection made by someone else's creator
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (responses are built before it)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
