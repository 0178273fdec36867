"""tsunagu/outbox.py: record_change, and the relay against a real nats-server (publish once, rows wait
while NATS is down, retention)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, select

from tests.kernel.conftest import MessagingModel, Outbox, collect, envelope, eventually
from tsunagu.db import make_engine, session_scope, utcnow
from tsunagu.events import EventEnvelope
from tsunagu.messaging import NatsConnection
from tsunagu.natsserver import NatsServer, free_port
from tsunagu.outbox import (
    OutboxRelay,
    ProcessedEventFields,
    add_event,
    claim_event,
    claim_events,
    claimed_events,
    prune_processed,
    record_change,
)


async def test_relay_publishes_pending_rows_once_even_if_run_twice(
    outbox_engine: Engine, connection: NatsConnection
) -> None:
    engine = outbox_engine
    events = [envelope(subject_id=f"r{i}") for i in range(5)]
    with session_scope(engine) as session:
        for event in events:
            add_event(session, Outbox, event)
    relay = OutboxRelay(engine, Outbox, connection)
    assert await relay.publish_pending() == 5
    # A crash between the publish ack and the "published" mark would publish again: the server drops it.
    with session_scope(engine) as session:
        for row in session.exec(select(Outbox)):
            row.published_at = None
    assert await relay.publish_pending() == 5
    info = await connection.js.stream_info("MATCHING")
    assert info.state.messages == 5
    with Session(engine) as session:
        assert all(row.published_at is not None for row in session.exec(select(Outbox)))
    assert relay.pending_count() == 0


async def test_relay_keeps_rows_while_nats_is_down(outbox_engine: Engine, tmp_path) -> None:
    engine = outbox_engine
    server = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port())
    server.start()
    connection = NatsConnection(server.url, "test")
    await connection.start()
    await connection.wait_connected(10)
    # Note each time the relay starts a round and finds NATS down.
    rounds_while_down = asyncio.Event()
    wait_connected = connection.wait_connected

    async def observed_wait_connected(timeout: float | None = None) -> None:
        if not connection.connected:
            rounds_while_down.set()
        await wait_connected(timeout)

    connection.wait_connected = observed_wait_connected  # type: ignore[method-assign]
    relay = OutboxRelay(engine, Outbox, connection, poll_interval=0.05)
    task = asyncio.create_task(relay.run())
    try:
        server.stop()
        await eventually(lambda: not connection.connected, timeout=10, message="the client to see NATS gone")
        with session_scope(engine) as session:
            add_event(session, Outbox, envelope(subject_id="while-down"))
        rounds_while_down.clear()
        relay.wake()
        await asyncio.wait_for(rounds_while_down.wait(), timeout=10)  # a round ran with NATS down...
        assert relay.pending_count() == 1  # ...and the row is waiting, not lost
        server.start()
        await eventually(lambda: relay.pending_count() == 0, timeout=20, message="the relay to drain the outbox")
        received = await collect(server.url, "matching.>", 1)
        assert EventEnvelope.from_json(received[0]).subject_id == "while-down"
    finally:
        task.cancel()
        await connection.close()
        server.stop()


async def test_a_wake_starts_a_round_before_the_poll_interval(
    outbox_engine: Engine, connection: NatsConnection
) -> None:
    relay = OutboxRelay(outbox_engine, Outbox, connection, poll_interval=3600)  # never polls in this test
    idle = asyncio.Event()
    sleep = relay._sleep_unless_woken

    async def observed_sleep(seconds: float) -> None:
        idle.set()  # the relay resumes us only once it waits (after clearing earlier wakes)
        await sleep(seconds)

    relay._sleep_unless_woken = observed_sleep  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(idle.wait(), timeout=10)
        with session_scope(outbox_engine) as session:
            add_event(session, Outbox, envelope(subject_id="woken"))
        relay.wake()
        await eventually(lambda: relay.pending_count() == 0, timeout=10, message="the woken relay to publish")
    finally:
        task.cancel()


async def test_a_wake_that_comes_while_a_round_runs_is_not_lost(
    outbox_engine: Engine, connection: NatsConnection
) -> None:
    """A commit just after a round read the outbox wakes the relay while that round still runs: the relay must
    go again at once, not sleep until its next poll with the event unsent (a lost wake-up made one ranking in
    ten wait the 200 ms poll in bench_pipeline.py)."""
    relay = OutboxRelay(outbox_engine, Outbox, connection, poll_interval=3600)  # only a kept wake publishes
    read = relay._pending
    committed_after_the_read = asyncio.Event()

    def pending_then_a_commit() -> list[tuple[int, str, str, str]]:
        rows = read()
        if not committed_after_the_read.is_set():
            with session_scope(outbox_engine) as session:
                add_event(session, Outbox, envelope(subject_id="committed-during-the-round"))
            relay.wake()  # as the session's after_commit hook does, from the route's worker thread
            committed_after_the_read.set()
        return rows

    relay._pending = pending_then_a_commit  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    try:
        await eventually(
            lambda: committed_after_the_read.is_set() and relay.pending_count() == 0,
            timeout=10,
            message="the event committed during a round to be published without waiting for the poll",
        )
    finally:
        task.cancel()


def test_published_rows_are_pruned_after_the_retention_and_pending_ones_never(outbox_engine: Engine) -> None:
    engine = outbox_engine
    with session_scope(engine) as session:
        for index in range(3):
            add_event(session, Outbox, envelope(subject_id=f"p{index}"))
    with session_scope(engine) as session:
        old, recent, _pending = session.exec(select(Outbox).order_by(Outbox.seq)).all()
        old.published_at = utcnow() - timedelta(days=8)
        recent.published_at = utcnow() - timedelta(days=1)
    relay = OutboxRelay(engine, Outbox, NatsConnection("nats://127.0.0.1:1", "unused"))
    assert relay.prune_published() == 1
    with Session(engine) as session:
        left = [EventEnvelope.from_json(row.payload).subject_id for row in session.exec(select(Outbox))]
    assert left == ["p1", "p2"]
    assert relay.pending_count() == 1


class Thing(MessagingModel, table=True):
    """An entity with ``version`` and ``updated_at``."""

    __tablename__ = "things"
    id: str = Field(primary_key=True)
    status: str = "draft"
    version: int = 1
    updated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Plain(MessagingModel, table=True):
    """An entity with the default ``entity_version`` and no ``updated_at``."""

    __tablename__ = "plains"
    id: str = Field(primary_key=True)
    entity_version: int = 4
    status: str = "draft"


def _events(engine: Engine) -> list[tuple[str, int]]:
    with Session(engine) as session:
        rows = session.exec(select(Outbox).order_by(Outbox.seq)).all()
        return [(e.subject_id, e.entity_version) for e in (EventEnvelope.from_json(row.payload) for row in rows)]


def test_record_change_applies_the_change_bumps_the_version_and_adds_the_events(outbox_engine: Engine) -> None:
    with Session(outbox_engine) as session:
        session.add(Thing(id="t1"))
        session.commit()
        thing = session.get(Thing, "t1")
        version = record_change(
            session,
            Outbox,
            thing,
            events=lambda t: [envelope(subject_id=t.id, version=t.version), envelope(subject_id="other")],
            version_field="version",
            status="published",
        )
        session.commit()
        assert version == 2
    with Session(outbox_engine) as session:
        stored = session.get(Thing, "t1")
        assert stored.version == 2 and stored.status == "published" and stored.updated_at is not None
    assert _events(outbox_engine) == [("t1", 2), ("other", 1)]


def test_record_change_uses_entity_version_by_default_and_is_rolled_back_with_the_transaction(
    outbox_engine: Engine,
) -> None:
    with Session(outbox_engine) as session:
        session.add(Plain(id="p1"))
        session.commit()
        plain = session.get(Plain, "p1")
        assert record_change(session, Outbox, plain, events=lambda p: [envelope(subject_id=p.id)]) == 5
        assert plain.entity_version == 5
        session.rollback()
    with Session(outbox_engine) as session:
        assert session.get(Plain, "p1").entity_version == 4
    assert _events(outbox_engine) == []  # the events go with the transaction or not at all


class Processed(ProcessedEventFields, MessagingModel, table=True):
    __tablename__ = "processed_events"


def test_processed_events_older_than_the_retention_are_pruned_and_recent_ones_stay(tmp_path) -> None:
    """On SQLite, and on PostgreSQL when TSUNAGU_TEST_POSTGRES_ADMIN_URL is set (CI)."""
    from tests.conftest import fresh_database

    with fresh_database(tmp_path, "prune") as url:
        engine = make_engine(url)
        MessagingModel.metadata.create_all(engine)
        now = utcnow()
        ages = {"month-old": 30, "eight-days": 8, "six-days": 6, "today": 0}
        with session_scope(engine) as session:
            for event_id, days in ages.items():
                for consumer in ("scorer", "search-index"):
                    session.add(
                        Processed(event_id=event_id, consumer=consumer, processed_at=now - timedelta(days=days))
                    )
        assert prune_processed(engine, Processed, timedelta(days=7)) == 4
        with Session(engine) as session:
            left = sorted({row.event_id for row in session.exec(select(Processed))})
            assert left == ["six-days", "today"]
            # A kept row still makes its event a duplicate for that consumer.
            assert not claim_event(session, Processed, "six-days", "scorer")
            assert claim_event(session, Processed, "month-old", "scorer")  # forgotten: would be applied again
        assert prune_processed(engine, Processed, timedelta(days=7)) == 0
        engine.dispose()


def test_a_batch_is_claimed_in_one_statement_each_id_once_per_consumer(tmp_path) -> None:
    """``claim_events`` returns the ids claimed now: not those claimed before, nor twice in one batch, nor one
    another transaction claims meanwhile (it waits for that one's commit and skips it, with no error). On SQLite,
    and on PostgreSQL when TSUNAGU_TEST_POSTGRES_ADMIN_URL is set (CI)."""
    from tests.conftest import fresh_database

    with fresh_database(tmp_path, "claims") as url:
        engine = make_engine(url)
        MessagingModel.metadata.create_all(engine)
        try:
            with session_scope(engine) as session:
                assert claim_events(session, Processed, ["a", "b"], "scorer") == {"a", "b"}
            with session_scope(engine) as session:
                assert claimed_events(session, Processed, ["a", "c", "x"], "scorer") == {"a"}
                assert claim_events(session, Processed, ["a", "c", "c", "d"], "scorer") == {"c", "d"}
                assert claimed_events(session, Processed, ["a", "c", "x"], "scorer") == {"a", "c"}
                assert claim_events(session, Processed, ["a"], "search-index") == {"a"}  # per consumer
                assert claim_events(session, Processed, [], "scorer") == set()
            with session_scope(engine) as first:
                assert claim_events(first, Processed, ["e"], "scorer") == {"e"}
                with ThreadPoolExecutor(1) as pool:  # another worker's transaction, while the first is open
                    second = pool.submit(_claim_in_own_transaction, engine, ["e", "f"])
                    first.commit()
                    assert second.result(timeout=60) == {"f"}
            with Session(engine) as session:
                rows = session.exec(select(Processed.event_id).where(Processed.consumer == "scorer")).all()
                assert sorted(rows) == ["a", "b", "c", "d", "e", "f"]
        finally:
            engine.dispose()


def _claim_in_own_transaction(engine: Engine, event_ids: list[str]) -> set[str]:
    with session_scope(engine) as session:
        return claim_events(session, Processed, event_ids, "scorer")


def test_the_runtime_prunes_with_the_configured_retention(outbox_engine: Engine) -> None:
    from tsunagu.service import ServiceRuntime
    from tsunagu.settings import KernelSettings

    settings = KernelSettings(TSUNAGU_GATEWAY_JWKS='{"keys": []}', TSUNAGU_PROCESSED_EVENTS_RETENTION_DAYS=2)
    runtime = ServiceRuntime("prune-test", settings, outbox_engine, processed_model=Processed, uses_nats=False)
    with session_scope(outbox_engine) as session:
        session.add(Processed(event_id="three-days", consumer="c", processed_at=utcnow() - timedelta(days=3)))
        session.add(Processed(event_id="one-day", consumer="c", processed_at=utcnow() - timedelta(days=1)))
    assert runtime.prune_processed_events() == 1
    with Session(outbox_engine) as session:
        assert [row.event_id for row in session.exec(select(Processed))] == ["one-day"]
