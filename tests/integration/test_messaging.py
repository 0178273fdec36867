"""The kernel's JetStream plumbing against a real nats-server: outbox relay, dedup, redelivery, dead letters."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from sqlmodel import Session, select

from tsunagu.db import make_engine, service_base, session_scope
from tsunagu.events import EventEnvelope
from tsunagu.messaging import (
    ConsumerSpec,
    EventConsumer,
    NatsConnection,
    PermanentEventError,
    list_dead_letters,
    replay_dead_letter,
)
from tsunagu.natsserver import NatsServer, free_port
from tsunagu.outbox import OutboxFields, OutboxRelay, add_event

MessagingModel = service_base("messagingtest")


class Outbox(OutboxFields, MessagingModel, table=True):
    __tablename__ = "outbox"


@pytest.fixture()
def nats_server(tmp_path):  # noqa: ANN001, ANN201
    server = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port())
    server.start()
    yield server
    server.stop()


def envelope(subject: str = "matching.request.submitted", subject_id: str = "r1", version: int = 1) -> EventEnvelope:
    return EventEnvelope(type=subject, source="test", subject_id=subject_id, entity_version=version, data={"n": subject_id})


async def collect(url: str, subject: str, count: int, timeout: float = 10.0) -> list[bytes]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        stream = "DEADLETTER" if subject.startswith("deadletter") else "MATCHING"
        sub = await js.pull_subscribe(subject, stream=stream)
        received: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(received) < count and asyncio.get_running_loop().time() < deadline:
            try:
                for message in await sub.fetch(count - len(received), timeout=1):
                    received.append(message.data)
                    await message.ack()
            except nats.errors.TimeoutError:
                pass
        return received
    finally:
        await client.close()


async def test_relay_publishes_pending_rows_once_even_if_run_twice(nats_server: NatsServer, tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    MessagingModel.metadata.create_all(engine)
    events = [envelope(subject_id=f"r{i}") for i in range(5)]
    with session_scope(engine) as session:
        for event in events:
            add_event(session, Outbox, event)
    connection = NatsConnection(nats_server.url, "test")
    await connection.start()
    await connection.wait_connected(10)
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
    await connection.close()


async def test_relay_keeps_rows_while_nats_is_down(tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    MessagingModel.metadata.create_all(engine)
    server = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port())
    server.start()
    connection = NatsConnection(server.url, "test")
    await connection.start()
    await connection.wait_connected(10)
    relay = OutboxRelay(engine, Outbox, connection, poll_interval=0.05)
    task = asyncio.create_task(relay.run())
    server.stop()
    with session_scope(engine) as session:
        add_event(session, Outbox, envelope(subject_id="while-down"))
    relay.wake()
    await asyncio.sleep(1.0)
    assert relay.pending_count() == 1  # waiting, not lost
    server.start()
    for _ in range(100):
        if relay.pending_count() == 0:
            break
        await asyncio.sleep(0.1)
    assert relay.pending_count() == 0
    received = await collect(server.url, "matching.>", 1)
    assert EventEnvelope.from_json(received[0]).subject_id == "while-down"
    task.cancel()
    await connection.close()
    server.stop()


async def test_failing_handler_is_redelivered_then_dead_lettered_and_replayable(nats_server: NatsServer) -> None:
    connection = NatsConnection(nats_server.url, "test")
    await connection.start()
    await connection.wait_connected(10)
    attempts: dict[str, int] = {}
    handled: list[str] = []

    async def handler(event: EventEnvelope) -> None:
        attempts[event.subject_id] = attempts.get(event.subject_id, 0) + 1
        if event.subject_id == "always-fails":
            raise RuntimeError("database is on fire")
        if event.subject_id == "impossible":
            raise PermanentEventError("no such request")
        handled.append(event.subject_id)

    consumer = EventConsumer(
        connection,
        ConsumerSpec(durable="test-consumer", stream="MATCHING", subjects=["matching.request.submitted"], handler=handler),
        max_deliveries=3,
        ack_wait_seconds=2,
    )
    task = asyncio.create_task(consumer.run())
    js = connection.js
    await js.publish("matching.request.submitted", b"{not json", headers={"Nats-Msg-Id": "garbage-1"})
    for subject_id in ("always-fails", "impossible", "fine"):
        event = envelope(subject_id=subject_id)
        await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})

    dead = [json.loads(raw) for raw in await collect(nats_server.url, "deadletter.test-consumer", 3, timeout=30)]
    task.cancel()
    reasons = sorted(record["error"].split(":")[0] for record in dead)
    assert reasons == ["failed 3 times", "malformed envelope", "permanent"]
    assert attempts["always-fails"] == 3  # bounded redelivery
    assert attempts["impossible"] == 1  # permanent errors are not retried
    assert handled == ["fine"]  # the consumer kept going past the bad ones

    listed = await list_dead_letters(js)
    assert {record["consumer"] for record in listed} == {"test-consumer"}
    failed = next(record for record in listed if record["error"].startswith("failed"))
    assert await replay_dead_letter(js, failed["sequence"]) == "matching.request.submitted"
    await connection.close()


def test_published_rows_are_pruned_after_the_retention_and_pending_ones_never(tmp_path) -> None:  # noqa: ANN001
    from datetime import timedelta

    from tsunagu.db import utcnow

    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    MessagingModel.metadata.create_all(engine)
    with session_scope(engine) as session:
        for index in range(3):
            add_event(session, Outbox, envelope(subject_id=f"p{index}"))
    with session_scope(engine) as session:
        old, recent, pending = session.exec(select(Outbox).order_by(Outbox.seq)).all()
        old.published_at = utcnow() - timedelta(days=8)
        recent.published_at = utcnow() - timedelta(days=1)
    relay = OutboxRelay(engine, Outbox, NatsConnection("nats://127.0.0.1:1", "unused"))
    assert relay.prune_published() == 1
    with Session(engine) as session:
        left = [EventEnvelope.from_json(row.payload).subject_id for row in session.exec(select(Outbox))]
    assert left == ["p1", "p2"]
    assert relay.pending_count() == 1


async def test_a_failing_batch_falls_back_to_one_by_one(nats_server: NatsServer) -> None:
    connection = NatsConnection(nats_server.url, "test")
    await connection.start()
    await connection.wait_connected(10)
    batches: list[list[str]] = []
    singles: list[str] = []

    async def batch_handler(events: list[EventEnvelope]) -> None:
        batches.append([event.subject_id for event in events])
        if any(event.subject_id == "bad" for event in events):
            raise RuntimeError("one bad event spoils the batch")

    async def handler(event: EventEnvelope) -> None:
        if event.subject_id == "bad":
            raise PermanentEventError("cannot be applied")
        singles.append(event.subject_id)

    js = connection.js
    for subject_id in ("a", "b", "bad", "c"):
        event = envelope(subject_id=subject_id)
        await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})
    consumer = EventConsumer(
        connection,
        ConsumerSpec(
            durable="batch-consumer",
            stream="MATCHING",
            subjects=["matching.request.submitted"],
            handler=handler,
            batch_handler=batch_handler,
            fetch_batch=10,
        ),
        max_deliveries=3,
    )
    task = asyncio.create_task(consumer.run())
    dead = await collect(nats_server.url, "deadletter.batch-consumer", 1, timeout=15)
    task.cancel()
    assert batches and batches[0] == ["a", "b", "bad", "c"]
    assert singles == ["a", "b", "c"]
    assert json.loads(dead[0])["error"].startswith("permanent")
    info = await js.consumer_info("MATCHING", "batch-consumer")
    assert info.num_ack_pending == 0 and info.num_pending == 0
    await connection.close()
