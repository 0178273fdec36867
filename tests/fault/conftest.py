"""A private whole system per fault test, and the ways to hurt it.

Fault tests kill processes with SIGKILL, freeze or kill the nats-server and restart them; doing that to the
session's shared ``system`` would break every other test, so each fault test starts its own: its own
nats-server and JetStream store, its own services and scorer workers, its own databases (SQLite files, or new
PostgreSQL databases when TSUNAGU_TEST_POSTGRES_ADMIN_URL is set), built by the same functions as the session
fixture (``tests.conftest.suite_system_config``, ``system_databases``, ``running_system``), so a fault test
runs the same code as ``make run``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import func, make_url, text
from sqlmodel import Session, col, select

from launcher.runner import System
from tests.conftest import Api, running_system, suite_system_config, system_databases
from tests.factories import request_body
from tsunagu.db import make_engine
from tsunagu.events import Subjects
from tsunagu.messaging import list_dead_letters

# Every fault test is bounded: pytest-timeout stops one that hangs (start-up and tear-down included).
FAULT_TIMEOUT_SECONDS = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fault/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.fault)
            item.add_marker(pytest.mark.e2e)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(FAULT_TIMEOUT_SECONDS))


@pytest.fixture
def private_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A whole system of this test's own (nothing shared with the session's ``system``)."""
    with system_databases() as urls:
        config = suite_system_config(tmp_path_factory.mktemp("fault"), urls)
        with running_system(config) as running:
            yield running


@pytest.fixture
def private_api(private_system: System) -> Iterator[Api]:
    api = Api(private_system)
    yield api
    api.http.close()


def kill9(system: System, key: str) -> int:
    """SIGKILL one process of the system (``gateway``, ``matching``, ``scorer-1``...): no clean-up runs, as
    when a machine or a container dies. Returns its exit status (-9)."""
    process = system.processes.pop(key)
    os.kill(process.pid, signal.SIGKILL)
    return process.wait(timeout=30)


def restart_service(system: System, name: str, timeout: float = 90) -> None:
    """Start a service again after ``kill9`` and wait until it answers /readyz."""
    system.start_service(name)
    system.wait_ready(timeout, services=[name])


def kill9_nats(system: System) -> None:
    """SIGKILL the nats-server (its JetStream store stays on disk; ``system.nats.start()`` starts the same
    server on the same port and store again)."""
    process = system.nats.process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    system.nats.process = None


def freeze_nats(system: System) -> None:
    """SIGSTOP the nats-server: connections stay open but nothing is read or answered (a hung broker)."""
    assert system.nats.process is not None
    os.kill(system.nats.process.pid, signal.SIGSTOP)


def thaw_nats(system: System) -> None:
    assert system.nats.process is not None
    os.kill(system.nats.process.pid, signal.SIGCONT)


async def _consumer_idle(system: System, stream: str, durable: str) -> bool:
    client = await nats.connect(system.nats.url)
    try:
        info = await client.jetstream().consumer_info(stream, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await client.close()


def consumer_idle(system: System, stream: str, durable: str) -> bool:
    """Every event on a durable consumer delivered and acknowledged (handled, or dead-lettered)."""
    return asyncio.run(_consumer_idle(system, stream, durable))


async def _consumer_backlog(system: System, stream: str, durable: str) -> int:
    client = await nats.connect(system.nats.url)
    try:
        info = await client.jetstream().consumer_info(stream, durable)
        return (info.num_pending or 0) + (info.num_ack_pending or 0)
    finally:
        await client.close()


def consumer_backlog(system: System, stream: str, durable: str) -> int:
    """Events of a durable consumer not yet delivered or not yet acknowledged."""
    return asyncio.run(_consumer_backlog(system, stream, durable))


async def _stream_messages(system: System, stream: str, subject: str) -> int:
    client = await nats.connect(system.nats.url)
    try:
        info = await client.jetstream().stream_info(stream, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)
    finally:
        await client.close()


def stream_messages(system: System, stream: str, subject: str) -> int:
    """How many messages of one subject a JetStream stream holds (what was stored, duplicates included)."""
    return asyncio.run(_stream_messages(system, stream, subject))


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.start, 2)


# --- what the consumers did, read from the services' own databases -----------------------------------------


def outbox_rows(system: System, service: str, subject: str) -> list[Any]:
    """A service's outbox rows of one subject (oldest first)."""
    from services.matching.models import OutboxRecord as MatchingOutbox
    from services.profiles.models import OutboxRecord as ProfilesOutbox

    model = {"matching": MatchingOutbox, "profiles": ProfilesOutbox}[service]
    engine = make_engine(system.database_url(service))
    try:
        with Session(engine) as session:
            return list(session.exec(select(model).where(model.subject == subject).order_by(model.seq)).all())
    finally:
        engine.dispose()


def pending_outbox(system: System, service: str) -> int:
    """Rows a service committed but has not published yet (its relay's backlog)."""
    from services.matching.models import OutboxRecord as MatchingOutbox
    from services.profiles.models import OutboxRecord as ProfilesOutbox

    model = {"matching": MatchingOutbox, "profiles": ProfilesOutbox}[service]
    engine = make_engine(system.database_url(service))
    try:
        with Session(engine) as session:
            query = select(func.count()).select_from(model).where(col(model.published_at).is_(None))
            return session.exec(query).one()
    finally:
        engine.dispose()


def submitted_event_ids(system: System) -> dict[str, str]:
    """Each submitted request's id -> the id of its ``matching.request.submitted`` event."""
    return {
        json.loads(row.payload)["subject_id"]: row.event_id
        for row in outbox_rows(system, "matching", Subjects.REQUEST_SUBMITTED)
    }


def rankings_by_event(system: System) -> dict[str, int]:
    """How many rankings each source event produced (a submission must produce exactly one)."""
    from services.matching.models import Ranking

    engine = make_engine(system.database_url("matching"))
    try:
        with Session(engine) as session:
            rows = session.exec(
                select(Ranking.source_event_id, func.count()).group_by(col(Ranking.source_event_id))
            ).all()
            return dict(rows)
    finally:
        engine.dispose()


def notifications_by_event(system: System, kind: str) -> dict[tuple[str, str], int]:
    """How many notifications each (event id, person) got, of one kind (one each, or it was duplicated)."""
    from gateway.models import Notification

    engine = make_engine(system.database_url("gateway"))
    try:
        with Session(engine) as session:
            rows = session.exec(
                select(Notification.event_id, Notification.user_id, func.count())
                .where(Notification.kind == kind)
                .group_by(col(Notification.event_id), col(Notification.user_id))
            ).all()
            return {(event_id, user_id): count for event_id, user_id, count in rows}
    finally:
        engine.dispose()


@contextmanager
def outbox_writes_blocked(system: System, service: str) -> Iterator[None]:
    """Hold a lock that stops every write to a service's outbox (reads go on) until the block ends: on SQLite
    a write transaction on the whole file (BEGIN IMMEDIATE), on PostgreSQL ``LOCK TABLE outbox IN EXCLUSIVE
    MODE``. A slow or locked database, as one under heavy load; the product is not told."""
    url = make_url(system.database_url(service))
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    engine = make_engine(str(url.render_as_string(hide_password=False)))
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            connection.execute(text("LOCK TABLE outbox IN EXCLUSIVE MODE"))
            yield
            transaction.rollback()
    finally:
        engine.dispose()


# --- a stream of submissions through the gateway ------------------------------------------------------------


class Submitter:
    """Submits ``total`` requests through the gateway from ``concurrency`` threads (one HTTP client each), in
    the background, as many SMEs do at once. Keeps the ids of the accepted ones (201), and every other answer
    or transport error as a failure (none is expected, whatever the faults: a write waits in an outbox)."""

    def __init__(
        self,
        system: System,
        smes: list[dict[str, str]],
        total: int,
        concurrency: int = 8,
        prefectures: tuple[str, ...] = ("13",),
    ) -> None:
        self.system = system
        self.smes = smes
        self.total = total
        self.concurrency = concurrency
        self.prefectures = prefectures
        self.accepted: list[str] = []
        self.failures: list[str] = []
        self._next = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0
        self.finished_at = 0.0

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.total:
                return None
            self._next += 1
            return self._next - 1

    def _work(self) -> None:
        with httpx.Client(base_url=self.system.url("gateway"), timeout=60) as http:
            while (index := self._take()) is not None:
                body = request_body(title=f"相談 {index}", prefecture=self.prefectures[index % len(self.prefectures)])
                try:
                    response = http.post("/api/v1/requests", headers=self.smes[index % len(self.smes)], json=body)
                except httpx.HTTPError as error:
                    with self._lock:
                        self.failures.append(f"{index}: {error!r}")
                    continue
                with self._lock:
                    if response.status_code == 201:
                        self.accepted.append(response.json()["id"])
                    else:
                        self.failures.append(f"{index}: {response.status_code} {response.text[:200]}")

    def start(self) -> Submitter:
        self.started_at = time.monotonic()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self.concurrency)]
        for thread in self._threads:
            thread.start()
        return self

    def done(self) -> int:
        with self._lock:
            return len(self.accepted) + len(self.failures)

    def join(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self._threads), f"submissions still running after {timeout}s"
        self.finished_at = time.monotonic()

    def per_second(self) -> float:
        return round(self.done() / max(self.finished_at - self.started_at, 1e-9), 1)


def rankings_by_request(system: System) -> dict[str, int]:
    """How many rankings each request has, whatever made them (its submission, or a re-ranking)."""
    from services.matching.models import Ranking

    engine = make_engine(system.database_url("matching"))
    try:
        with Session(engine) as session:
            return dict(session.exec(select(Ranking.request_id, func.count()).group_by(col(Ranking.request_id))).all())
    finally:
        engine.dispose()


def unranked(system: System, request_ids: list[str]) -> list[str]:
    """The requests (of ``request_ids``) that have no ranking yet. A request an expert change marked for
    re-ranking may be ranked first by the re-ranking; its submitted event then finds it ranked already (a new
    version) and writes nothing: ranked once in effect, not lost."""
    rankings = rankings_by_request(system)
    return [request_id for request_id in request_ids if rankings.get(request_id, 0) == 0]


async def _dead_letters(system: System) -> list[dict]:
    client = await nats.connect(system.nats.url)
    try:
        return await list_dead_letters(client.jetstream(), 500)
    finally:
        await client.close()


def dead_letters(system: System) -> list[dict]:
    """Every dead letter the system's consumers wrote (none is expected when only processes fail)."""
    return asyncio.run(_dead_letters(system))


def record_figures(name: str, figures: dict[str, Any]) -> Path:
    """Keep a fault test's figures (drain times...) for the lead to quote: ``{test: {database: figures}}`` in
    ``tests/artifacts/faults.json`` (``TSUNAGU_FAULT_RESULTS`` names another file, e.g.
    bench/results/faults.json), with the machine's load at the time, since a crowded machine drains slower."""
    path = Path(os.environ.get("TSUNAGU_FAULT_RESULTS", Path(__file__).parents[1] / "artifacts" / "faults.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    database = "postgresql" if os.environ.get("TSUNAGU_TEST_POSTGRES_ADMIN_URL") else "sqlite"
    results.setdefault(name, {})[database] = {
        **figures,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{name} ({database}): {json.dumps(figures, ensure_ascii=False)}")  # the figures, in the test log (-s)
    return path
