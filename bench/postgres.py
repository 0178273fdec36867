"""The benchmarks' PostgreSQL: one new database per service for a run, dropped after it.

``bench_load.py`` and ``bench_pipeline.py`` take ``--postgres-admin-url`` (a role that may create databases,
e.g. ``postgresql+psycopg://tsunagu:tsunagu@127.0.0.1:5432/postgres``) and pass what ``service_databases``
yields to ``launcher.runner.SystemConfig.database_urls``; without it they yield nothing and the system keeps
SQLite files in its data directory. Dropping goes through the test suite's ``drop_database`` (our own
sessions ended first, then a plain DROP, retried while one is still closing), so a run that stopped its
processes a moment ago leaves no database behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from launcher.runner import SERVICES
from tests.conftest import drop_database


@contextmanager
def service_databases(admin_url: str | None, tag: str) -> Iterator[dict[str, str]]:
    """{service: database URL} of new databases named ``tsunagu_<service>_<tag>_<pid>`` (dropped on exit), or
    {} without ``admin_url`` (SQLite)."""
    if not admin_url:
        yield {}
        return
    suffix = f"{tag}_{os.getpid()}"
    names = {service: f"tsunagu_{service}_{suffix}" for service in SERVICES}
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))  # left by a run that was killed
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        base = admin_url.rsplit("/", 1)[0]
        yield {service: f"{base}/{name}" for service, name in names.items()}
    finally:
        for name in names.values():
            drop_database(admin, name)
        admin.dispose()
