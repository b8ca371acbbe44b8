"""Migration 0002_studies on a database that already holds tasks and runs (both backends).

On SQLite the obvious batch migration would drop and copy ``task``, which with foreign keys
on deletes every run through ON DELETE CASCADE; this test is what would catch that.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from v6flow_server.db.migrate import alembic_config
from v6flow_server.db.session import make_engine

ROWS = {"organization": 2, "collaboration": 1, "task": 3, "run": 5, "task_database": 3}


def _fill(connection: sa.Connection) -> None:
    """Rows as revision 0001 stores them: 3 tasks (one a subtask) with 5 runs."""
    connection.execute(sa.text("INSERT INTO organization (id, name) VALUES (1, 'a'), (2, 'b')"))
    connection.execute(sa.text(
        "INSERT INTO collaboration (id, name, encrypted) VALUES (1, 'c', false)"))
    for task_id, parent in ((1, None), (2, 1), (3, None)):
        connection.execute(sa.text(
            "INSERT INTO task (id, image, collaboration_id, job_id, parent_id, init_org_id, "
            "created_at) VALUES (:id, 'img', 1, 1, :parent, 1, '2026-01-01 00:00:00')"),
            {"id": task_id, "parent": parent})
        connection.execute(sa.text(
            "INSERT INTO task_database (task_id, database, parameters) VALUES (:id, 'd', '{}')"),
            {"id": task_id})
    for run_id, (task_id, org) in enumerate([(1, 1), (1, 2), (2, 1), (3, 1), (3, 2)], start=1):
        connection.execute(sa.text(
            "INSERT INTO run (id, task_id, organization_id, status, blob_storage_used) "
            "VALUES (:id, :task, :org, 'completed', false)"),
            {"id": run_id, "task": task_id, "org": org})


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {table: int(connection.execute(sa.text(f"SELECT count(*) FROM {table}"))
                           .scalar_one()) for table in ROWS}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_upgrade_and_downgrade_keep_every_row(backend: str, tmp_path: Path,
                                              postgres_url: Callable[[], str]) -> None:
    """0001 → 0002 → 0001 keeps tasks, runs and databases; 0002 enforces task.study_id."""
    url = f"sqlite:///{tmp_path}/m.sqlite" if backend == "sqlite" else postgres_url()
    engine = make_engine(url)
    config = alembic_config(engine)
    try:
        command.upgrade(config, "0001")
        with engine.begin() as connection:
            _fill(connection)
        command.upgrade(config, "0002_studies")
        assert _counts(engine) == ROWS
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO study (id, name, collaboration_id) VALUES (7, 's', 1)"))
            connection.execute(sa.text("UPDATE task SET study_id = 7 WHERE id = 3"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.text("UPDATE task SET study_id = 8 WHERE id = 1"))
        command.downgrade(config, "0001")
        assert _counts(engine) == ROWS
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT study_id FROM task WHERE id = 3")) \
                .scalar_one() is None
    finally:
        engine.dispose()
