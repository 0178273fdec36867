"""A PostgreSQL server of one test's own, which the test may stop and start (tests/fault/test_postgres_restart.py).

The suite's shared PostgreSQL (TSUNAGU_TEST_POSTGRES_ADMIN_URL) serves every other test at the same time, so
stopping it would break them; instead ``initdb`` makes a throw-away cluster in a temporary directory, on a free
port of 127.0.0.1 with trust authentication (loopback only, removed afterwards). PostgreSQL refuses to run as
root, so when the tests run as root (CI does) every server command runs as the ``postgres`` OS user (runuser),
which owns the directory. The binaries are Debian's (/usr/lib/postgresql/<version>/bin, from the
``postgresql`` package that .ci/run installs before both runs); ``find_binaries`` returns None when there are
none, and the test skips saying so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from tsunagu.natsserver import free_port

SUPERUSER = "tsunagu"


def find_binaries() -> Path | None:
    """The newest PostgreSQL's bin directory that has initdb and pg_ctl, or None."""
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


class PrivateCluster:
    """initdb + pg_ctl start/stop of a cluster only this test uses."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tsunagu-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=timeout, cwd=self.root)

    def init(self) -> PrivateCluster:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",  # a throw-away cluster: no need to wait for the disk
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c max_connections=200"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: every session is ended at once and the server shuts down cleanly (what a restart for an
        upgrade or a failover does); ``immediate``: as if the machine died."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        result = subprocess.run(
            [*self._as_user, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"],
            capture_output=True,
            check=False,
            cwd=self.root,
        )
        return result.returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_databases(self, names: list[str]) -> dict[str, str]:
        """One database per name; returns name -> URL."""
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for name in names:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return {name: self.url(name) for name in names}

    def destroy(self) -> None:
        if self.datadir.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
