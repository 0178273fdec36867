"""Alembic, one migration history per service.

Each service keeps ``migrations/`` (env.py + versions/) beside its models; env.py only calls ``run_env``
with the service's metadata, so the Alembic plumbing lives here once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlmodel import create_engine


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # ConfigParser interpolation would read "%" in passwords as syntax.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(migrations_dir: Path, database_url: str) -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), "head")


def make_revision(migrations_dir: Path, database_url: str, message: str) -> None:
    command.revision(alembic_config(migrations_dir, database_url), message=message, autogenerate=True)


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context

    url = context.config.attributes.get("database_url") or context.config.get_main_option("sqlalchemy.url")
    render_as_batch = url.startswith("sqlite")  # SQLite cannot ALTER most things; batch mode copies tables
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=render_as_batch)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=render_as_batch)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
