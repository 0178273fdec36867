"""tsunagu/db.py: SQLite files in WAL mode, and a new connection that meets a locked file waits instead of
failing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tsunagu.db import make_engine, use_wal


class _LockedTwice:
    """A cursor whose first two statements meet a locked file, as a new connection sometimes does."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor, self.failures, self.statements = cursor, 2, []

    def execute(self, sql: str) -> sqlite3.Cursor:
        self.statements.append(sql)
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.cursor.execute(sql)


def test_a_new_file_is_switched_to_wal_once_and_a_locked_file_is_tried_again(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "new.sqlite3")
    locked = _LockedTwice(connection.cursor())
    use_wal(locked)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert locked.statements == ["PRAGMA journal_mode"] * 3 + ["PRAGMA journal_mode=WAL"]
    # Once in WAL, a later connection only reads the mode.
    later = _LockedTwice(sqlite3.connect(tmp_path / "new.sqlite3").cursor())
    later.failures = 0
    use_wal(later)
    assert later.statements == ["PRAGMA journal_mode"]


def test_the_engine_opens_sqlite_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()
