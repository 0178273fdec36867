"""tsunagu/messaging.py against a real nats-server: redelivery, dead letters and their replay, batches that
fall back to one by one, and the connection that waits for NATS."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.kernel.conftest import collect, envelope, eventually
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


async def test_failing_handler_is_redelivered_then_dead_lettered_and_replayable(
    nats_server: NatsServer, connection: NatsConnection
) -> None:
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
        ConsumerSpec(
            durable="test-consumer", stream="MATCHING", subjects=["matching.request.submitted"], handler=handler
        ),
        max_deliveries=3,
        ack_wait_seconds=2,
    )
    task = asyncio.create_task(consumer.run())
    js = connection.js
    try:
        await js.publish("matching.request.submitted", b"{not json", headers={"Nats-Msg-Id": "garbage-1"})
        for subject_id in ("always-fails", "impossible", "fine"):
            event = envelope(subject_id=subject_id)
            await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})

        dead = [json.loads(raw) for raw in await collect(nats_server.url, "deadletter.test-consumer", 3, timeout=30)]
        await eventually(lambda: "fine" in handled, message="the good event handled")
    finally:
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


async def test_a_failing_batch_falls_back_to_one_by_one(nats_server: NatsServer, connection: NatsConnection) -> None:
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

    async def all_acknowledged() -> bool:
        info = await js.consumer_info("MATCHING", "batch-consumer")
        return info.num_ack_pending == 0 and info.num_pending == 0

    task = asyncio.create_task(consumer.run())
    try:
        dead = await collect(nats_server.url, "deadletter.batch-consumer", 1, timeout=15)
        # The dead letter is written while the batch is still being worked through one by one: wait for the
        # event after the bad one, and for every ack to reach the server, before stopping the consumer.
        await eventually(lambda: "c" in singles, message="event c handled")
        await eventually(all_acknowledged, message="every event of the batch acknowledged")
    finally:
        task.cancel()
    assert batches and batches[0] == ["a", "b", "bad", "c"]
    assert singles == ["a", "b", "c"]
    assert json.loads(dead[0])["error"].startswith("permanent")
    info = await js.consumer_info("MATCHING", "batch-consumer")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_the_connection_waits_for_nats_and_creates_the_streams(tmp_path) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port())
    connection = NatsConnection(server.url, "test")
    await connection.start()  # NATS is not there yet: the service starts anyway and keeps trying
    try:
        assert not connection.connected
        server.start()
        await connection.wait_connected(20)
        assert connection.connected
        names = {info.config.name for info in await connection.js.streams_info()}
        assert {"PROFILES", "MATCHING", "DEADLETTER"} <= names
    finally:
        await connection.close()
        server.stop()


async def test_a_fetch_that_times_out_either_way_keeps_the_subscription() -> None:
    """nats-py's fetch raises its own TimeoutError, or asyncio's (the built-in one) when the second runs out
    between its two pull requests: both mean "nothing yet" and the consumer fetches again on the same
    subscription, instead of ending its loop (a new subscription and a pause each time)."""
    import nats.errors

    class Subscription:
        def __init__(self) -> None:
            self.fetches = 0

        async def fetch(self, batch: int, timeout: float) -> list:
            self.fetches += 1
            if self.fetches == 1:
                raise TimeoutError
            if self.fetches == 2:
                raise nats.errors.TimeoutError
            raise asyncio.CancelledError  # the test's way out

    async def handler(event: EventEnvelope) -> None:
        raise AssertionError("nothing was fetched")

    consumer = EventConsumer(
        NatsConnection("nats://127.0.0.1:1", name="tsunagu-test"),
        ConsumerSpec(durable="idle", stream="MATCHING", subjects=["matching.request.submitted"], handler=handler),
    )
    subscription = Subscription()
    with pytest.raises(asyncio.CancelledError):  # only the test's own way out ends the loop
        await consumer._consume(subscription)
    assert subscription.fetches == 3
