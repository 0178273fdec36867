"""Database engines and sessions (SQLModel over SQLAlchemy).

SQLite is the default; PostgreSQL when DATABASE_URL says so. Each service owns its database and its
own SQLModel registry (see ``service_base``), so one process never creates another service's tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, TypeDecorator, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import registry
from sqlmodel import Session, SQLModel, create_engine, text
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """A point in time, read back aware on every database: ``DateTime(timezone=True)`` on PostgreSQL gives an
    aware value, but SQLite keeps no offset (it would store a JST time's wall clock and hand back a naive
    value, and an API answer would then carry a date-time without its offset, which RFC 3339 and the OpenAPI
    document do not allow). On SQLite it is stored in UTC and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def service_base(name: str) -> type[SQLModel]:
    """A SQLModel base class with a registry (and so a MetaData) of the service's own."""
    return type(f"{name.title()}Model", (SQLModel,), {}, registry=registry())


def use_wal(cursor: Any) -> None:
    """Put an SQLite database file in WAL mode, unless it is already (the mode is kept in the file): only the
    first connection to a new file switches (switching needs the file to itself), every later one reads the mode.

    A new connection's first statement has met "database is locked" although the busy timeout was set, while
    other connections used the file (about once in a few hundred test setups, on the mode's read as on the
    switch): it is tried again, for up to 30 s like the busy timeout."""
    for attempt in Retrying(
        retry=retry_if_exception(_locked),
        wait=wait_exponential(multiplier=0.01, max=0.5),
        stop=stop_after_delay(30),
        reraise=True,
    ):
        with attempt:  # every row read: a statement left unfinished would keep its lock on the file
            [(mode,)] = cursor.execute("PRAGMA journal_mode").fetchall()
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL").fetchall()


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # busy_timeout waits instead of failing; WAL lets the outbox relay read while a request writes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error (nothing half-written)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


# SQLite's OperationalError also means "no such table" or a syntax error (bugs, which stay a 500); only these
# mean the file is busy or cannot be reached for now.
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open database", "disk i/o error")


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached for now (a server restarting or stopped, a dropped
    connection, a full pool, a busy SQLite file), as opposed to a bug or a refused value. Such a request is
    answered 503 with Retry-After (tsunagu/errors.py), and an event handler that meets it waits for the
    database instead of spending the event's deliveries (tsunagu/messaging.py)."""
    if isinstance(error, sa_exc.TimeoutError):  # no connection free in the pool in time
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:  # the connection broke under a statement
        return True
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        if type(error.orig).__module__.startswith("sqlite3"):
            message = str(error.orig).lower()
            return any(part in message for part in _SQLITE_UNAVAILABLE)
        return True  # PostgreSQL: connection refused or lost, server shutting down, too many clients...
    return False
