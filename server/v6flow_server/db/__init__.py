"""Persistence: ORM models, engine/session factory and the Alembic migrations."""
