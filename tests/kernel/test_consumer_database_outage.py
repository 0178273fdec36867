"""An event handler that cannot reach its database (tsunagu/messaging.py ``_handle_waiting_for_database``): the
event waits for the database, however long that takes, without spending its deliveries, and is handled once
when the database answers again; any other failure is still redelivered a bounded number of times and then
dead-lettered. A real nats-server; the database errors are real psycopg/SQLAlchemy ones (a port where nothing
listens, then a SQLite file that works)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from sqlalchemy import text

from tests.kernel.conftest import collect, envelope, eventually
from tsunagu.db import make_engine
from tsunagu.events import EventEnvelope
from tsunagu.messaging import ConsumerSpec, EventConsumer, NatsConnection, list_dead_letters
from tsunagu.natsserver import NatsServer


async def test_an_event_waits_out_a_database_outage_longer_than_its_retries(
    nats_server: NatsServer, connection: NatsConnection, tmp_path: Path
) -> None:
    # A port bound here and never listened on: every connection to it is refused at once, and no other
    # process on this shared machine can start listening on it meanwhile.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    down = make_engine(f"postgresql+psycopg://nobody:nothing@127.0.0.1:{held.getsockname()[1]}/none?connect_timeout=2")
    up = make_engine(f"sqlite:///{tmp_path / 'up.sqlite3'}")
    database = {"engine": down}
    outage_ends = time.monotonic() + 6  # longer than 3 deliveries with ack_wait 2 s would last
    handled: list[tuple[str, int]] = []
    attempts: list[str] = []

    def apply(event: EventEnvelope) -> None:
        attempts.append(event.subject_id)
        if time.monotonic() >= outage_ends:
            database["engine"] = up
        with database["engine"].connect() as connection_:
            connection_.execute(text("SELECT 1"))

    async def handler(event: EventEnvelope) -> None:
        await asyncio.to_thread(apply, event)
        handled.append((event.subject_id, 1))

    consumer = EventConsumer(
        connection,
        ConsumerSpec(durable="db-outage", stream="MATCHING", subjects=["matching.request.submitted"], handler=handler),
        max_deliveries=3,
        ack_wait_seconds=2,
    )
    task = asyncio.create_task(consumer.run())
    try:
        for subject_id in ("first", "second"):
            event = envelope(subject_id=subject_id)
            await connection.js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})
        await eventually(lambda: len(handled) >= 2, timeout=60, message="both events handled after the outage")
        await eventually(
            lambda: {subject for subject, _ in handled} == {"first", "second"}, timeout=60, message="both events"
        )
    finally:
        task.cancel()
        down.dispose()
        up.dispose()
        held.close()
    # The first waited out the outage (held in progress); the second, fetched in the same batch, may have been
    # delivered again meanwhile (its ack timer ran): real handlers skip an event they already applied.
    assert handled[0] == ("first", 1) and {subject for subject, _ in handled} == {"first", "second"}
    assert attempts.count("first") > 3  # tried more often than max_deliveries while the database was away
    assert await collect(nats_server.url, "deadletter.db-outage", 1, timeout=2) == []
    assert [r for r in await list_dead_letters(connection.js) if r["consumer"] == "db-outage"] == []
    info = await connection.js.consumer_info("MATCHING", "db-outage")
    assert info.num_ack_pending == 0 and info.num_pending == 0
