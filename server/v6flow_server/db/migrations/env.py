"""Alembic environment: runs online against the engine handed over in ``config.attributes``.

On SQLite, foreign keys are switched off while migrations run (Alembic's advice for batch
migrations): a batch migration copies a table and drops the original, and with foreign keys
on, that drop would delete every row that refers to it through ``ON DELETE CASCADE``. The
keys are checked (``PRAGMA foreign_key_check``) and switched on again afterwards.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine

from v6flow_server.db.models import Base

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    # On the driver's connection, outside any transaction (the engine begins every
    # SQLAlchemy transaction with BEGIN IMMEDIATE, inside which SQLite ignores the pragma).
    raw: Any = connection.connection.driver_connection
    if sqlite:
        raw.execute("PRAGMA foreign_keys=OFF")
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=sqlite)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        raw.execute("PRAGMA foreign_keys=ON")
        if broken:
            raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")
