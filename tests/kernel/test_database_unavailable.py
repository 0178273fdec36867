"""A database that cannot be reached is a 503 with Retry-After and a bilingual message, never a 500; any other
database error (a bug, a constraint) stays a 500 (tsunagu/db.py is_database_unavailable, tsunagu/errors.py).

The errors here are real ones from real drivers: psycopg refused by a port where no server listens, a
PostgreSQL backend terminated under a running statement (when TSUNAGU_TEST_POSTGRES_ADMIN_URL names a
server), a full connection pool, a locked SQLite file. The whole-system proof (PostgreSQL stopped under
load) is tests/fault/test_postgres_restart.py."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.conftest import wait_until
from tests.kernel.conftest import make_app
from tsunagu.db import is_database_unavailable, make_engine

_HELD = socket.socket()  # bound, never listening: connections to it are refused, and nobody else can take it
_HELD.bind(("127.0.0.1", 0))


def _refused_url() -> str:
    return f"postgresql+psycopg://nobody:nothing@127.0.0.1:{_HELD.getsockname()[1]}/none?connect_timeout=2"


def _raised(engine, statement: str) -> Exception:
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    except Exception as error:
        return error
    raise AssertionError(f"{statement} did not fail")


def test_the_answer_is_a_bilingual_503_with_retry_after_when_postgresql_is_not_there() -> None:
    app = make_app()
    engine = make_engine(_refused_url())

    @app.get("/things")
    def things() -> list[int]:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT 1")).scalars())

    response = TestClient(app, raise_server_exceptions=False).get("/things")
    engine.dispose()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert error["message_ja"].startswith("データベースに一時的に接続できません")
    assert "temporarily unavailable" in error["message_en"]
    assert "127.0.0.1" not in response.text and "psycopg" not in response.text  # nothing of the cause leaks


def test_other_database_errors_stay_a_500(tmp_path: Path) -> None:
    app = make_app()
    engine = make_engine(f"sqlite:///{tmp_path / 'bugs.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))

    @app.get("/missing-table")
    def missing_table() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))

    @app.get("/duplicate")
    def duplicate() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/missing-table", "/duplicate"):
        response = client.get(path)
        assert response.status_code == 500, path
        assert response.json()["error"]["code"] == "internal_error"
        assert "retry-after" not in response.headers
    assert not is_database_unavailable(_raised(engine, "SELECT * FROM no_such_table"))
    assert isinstance(_raised(engine, "INSERT INTO t VALUES (1)"), IntegrityError)
    assert not is_database_unavailable(_raised(engine, "INSERT INTO t VALUES (1)"))
    assert not is_database_unavailable(ValueError("not a database error"))
    engine.dispose()


def test_which_errors_mean_unavailable(tmp_path: Path) -> None:
    refused = make_engine(_refused_url())
    assert is_database_unavailable(_raised(refused, "SELECT 1"))
    refused.dispose()

    # A full pool: one connection, held; the next caller gives up after 0.1 s.
    path = tmp_path / "pool.sqlite3"
    small = create_engine(f"sqlite:///{path}", pool_size=1, max_overflow=0, pool_timeout=0.1)
    held = small.connect()
    try:
        error = _raised(small, "SELECT 1")
    finally:
        held.close()
        small.dispose()
    assert is_database_unavailable(error)

    # A SQLite file another writer holds: "database is locked" once the busy timeout is spent.
    locker = sqlite3.connect(tmp_path / "locked.sqlite3", isolation_level=None)
    locker.execute("CREATE TABLE t (id INTEGER)")
    locker.execute("BEGIN EXCLUSIVE")
    waiting = create_engine(f"sqlite:///{tmp_path / 'locked.sqlite3'}", connect_args={"timeout": 0.1})
    try:
        locked = _raised(waiting, "INSERT INTO t VALUES (1)")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        waiting.dispose()
    assert isinstance(locked, OperationalError) and "locked" in str(locked)
    assert is_database_unavailable(locked)


@pytest.mark.skipif(
    not os.environ.get("TSUNAGU_TEST_POSTGRES_ADMIN_URL"), reason="needs TSUNAGU_TEST_POSTGRES_ADMIN_URL"
)
def test_a_connection_lost_under_a_statement_is_a_503_and_the_next_request_works() -> None:
    """The server ends the backend in the middle of a request (as a restart does): that request gets the 503,
    and the very next one is served on a fresh connection (pool_pre_ping), with no restart of the app."""
    url = os.environ["TSUNAGU_TEST_POSTGRES_ADMIN_URL"]
    engine = make_engine(url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    app = make_app()
    pids: list[int] = []

    @app.get("/slow")
    def slow() -> dict[str, int]:
        with engine.connect() as connection:
            pids.append(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
            connection.execute(text("SELECT pg_sleep(10)"))
        return {"slept": 10}

    @app.get("/quick")
    def quick() -> dict[str, int]:
        with engine.connect() as connection:
            return {"one": connection.execute(text("SELECT 1")).scalar_one()}

    client = TestClient(app, raise_server_exceptions=False)
    answers: list = []
    caller = threading.Thread(target=lambda: answers.append(client.get("/slow")))
    caller.start()
    wait_until(lambda: pids, timeout=10, message="the slow request's backend")
    started = time.monotonic()
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
    caller.join(timeout=15)
    assert time.monotonic() - started < 5  # the request ended when its connection did
    assert answers[0].status_code == 503, answers[0].text
    assert answers[0].json()["error"]["code"] == "database_unavailable"
    assert client.get("/quick").json() == {"one": 1}
    engine.dispose()
    admin.dispose()
