"""Alembic, one migration history per service.

Each service keeps ``migrations/`` (env.py + versions/) beside its models; env.py only calls ``run_env``
with the service's metadata, so the Alembic plumbing lives here once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlmodel import create_engine, text


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # ConfigParser interpolation would read "%" in passwords as syntax.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


# Any fixed number: the PostgreSQL advisory lock that serialises concurrent migrations of one database.
_MIGRATION_LOCK_ID = 7_465_723


def upgrade(migrations_dir: Path, database_url: str) -> None:
    config = alembic_config(migrations_dir, database_url)
    if not database_url.startswith("postgresql"):
        command.upgrade(config, "head")
        return
    # Several pods may start at once (Kubernetes init containers): the first migrates, the others wait
    # for the lock and then find the schema current, instead of failing half-way through a DDL race.
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        connection.commit()
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    url = context.config.attributes.get("database_url") or context.config.get_main_option("sqlalchemy.url")
    render_as_batch = url.startswith("sqlite")  # SQLite cannot ALTER most things; batch mode copies tables
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=render_as_batch)
        with context.begin_transaction():
            context.run_migrations()
        return
    shared = context.config.attributes.get("connection")
    if shared is not None:  # upgrade() holds the migration lock on this connection
        context.configure(connection=shared, target_metadata=metadata, render_as_batch=render_as_batch)
        with context.begin_transaction():
            context.run_migrations()
        shared.commit()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=render_as_batch)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
