"""Transactional outbox: the event row commits with the state change, a relay publishes it later.

A service adds the event in the same session as its change (``add_event``); if the transaction rolls
back, no event exists. The relay (``OutboxRelay``) publishes pending rows to JetStream with
``Nats-Msg-Id`` = event id, waits for the publish ack, then marks the row published. With NATS down the
rows wait; a crash between ack and mark republishes the row, which the server's duplicate window drops.
Each publish carries the event's correlation id as a NATS header too (``Tsunagu-Correlation-Id``).

``processed_events`` (what each consumer has applied, for idempotency) is pruned like the published rows:
see ``prune_processed`` for why a retention of days is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Text, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from tsunagu import metrics
from tsunagu.db import session_scope, utcnow
from tsunagu.events import EventEnvelope
from tsunagu.logging import event_context
from tsunagu.messaging import NatsConnection, correlation_headers

log = logging.getLogger(__name__)


class OutboxFields(SQLModel):
    """Columns of every service's ``outbox`` table (each service declares the table on its own base)."""

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    subject: str = Field(max_length=200)
    payload: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)


class ProcessedEventFields(SQLModel):
    """Columns of every consuming service's ``processed_events`` table: what each consumer has applied."""

    event_id: str = Field(primary_key=True, max_length=64)
    consumer: str = Field(primary_key=True, max_length=100)
    # Indexed: the hourly pruning (``prune_processed``) deletes by age.
    processed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)


def add_event(session: Session, outbox_model: type[OutboxFields], envelope: EventEnvelope) -> None:
    session.add(outbox_model(event_id=envelope.id, subject=envelope.type, payload=envelope.model_dump_json()))


def add_events(session: Session, outbox_model: type[OutboxFields], envelopes: list[EventEnvelope]) -> None:
    """Many events in one INSERT (bulk imports): the same rows as ``add_event``, without building an ORM
    object per event, which dominates the cost when tens of thousands are written at once."""
    if not envelopes:
        return
    now = utcnow()
    # Core executemany on the table: one prepared statement, no ORM bookkeeping per row.
    session.connection().execute(
        outbox_model.__table__.insert(),  # type: ignore[attr-defined]
        [
            {
                "event_id": envelope.id,
                "subject": envelope.type,
                "payload": envelope.model_dump_json(),
                "created_at": now,
                "attempts": 0,
            }
            for envelope in envelopes
        ],
    )


def record_change(
    session: Session,
    outbox_model: type[OutboxFields],
    entity: Any,
    events: Callable[[Any], Iterable[EventEnvelope]],
    *,
    version_field: str = "entity_version",
    **changes: Any,
) -> int:
    """The one way to change an entity's state: apply ``changes``, bump its version (and ``updated_at``
    when it has one), and add the events of the new state to the outbox, all in the caller's transaction.
    ``events`` builds the envelopes from the changed entity (so they carry the new version). Returns the
    new version."""
    for name, value in changes.items():
        setattr(entity, name, value)
    version = getattr(entity, version_field) + 1
    setattr(entity, version_field, version)
    if hasattr(entity, "updated_at"):
        entity.updated_at = utcnow()
    session.add(entity)
    for envelope in events(entity):
        add_event(session, outbox_model, envelope)
    return version


def claim_event(session: Session, processed_model: type[ProcessedEventFields], event_id: str, consumer: str) -> bool:
    """True the first time a consumer sees an event id (inside the handler's transaction), else False."""
    if is_claimed(session, processed_model, event_id, consumer):
        return False
    session.add(processed_model(event_id=event_id, consumer=consumer))
    return True


def is_claimed(session: Session, processed_model: type[ProcessedEventFields], event_id: str, consumer: str) -> bool:
    """Whether a consumer has applied this event id already: a read only, for a handler that does its work
    before its first write (and still claims with ``claim_event`` when it writes)."""
    return session.get(processed_model, (event_id, consumer)) is not None


def claimed_events(
    session: Session, processed_model: type[ProcessedEventFields], event_ids: Iterable[str], consumer: str
) -> set[str]:
    """Which of these event ids a consumer has applied already: ``is_claimed`` for a batch, in one read."""
    ids = list(event_ids)
    if not ids:
        return set()
    return set(
        session.exec(
            select(processed_model.event_id).where(
                col(processed_model.consumer) == consumer, col(processed_model.event_id).in_(ids)
            )
        )
    )


def claim_events(
    session: Session, processed_model: type[ProcessedEventFields], event_ids: Iterable[str], consumer: str
) -> set[str]:
    """``claim_event`` for a batch, in one statement: returns the ids claimed now, leaving out those claimed
    before (a redelivery) or by a transaction that commits meanwhile (another worker that fetched the same
    event): ``INSERT ... ON CONFLICT DO NOTHING RETURNING``. On PostgreSQL a claim another transaction has
    made but not yet committed is waited for, then skipped if it commits, so the race costs no rollback of
    the whole batch (a plain INSERT would fail it with a duplicate key)."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    table = processed_model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    now = utcnow()
    statement = (
        insert(table)
        .values([{"event_id": event_id, "consumer": consumer, "processed_at": now} for event_id in ids])
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    return set(session.connection().execute(statement).scalars())


def prune_processed(engine: Engine, processed_model: type[ProcessedEventFields], keep: timedelta) -> int:
    """Delete ``processed_events`` rows older than ``keep`` (default 7 days, ``TSUNAGU_PROCESSED_EVENTS_
    RETENTION_DAYS``, at least 1); returns how many went.

    Why forgetting is safe: a row is needed only while the same event can still arrive again, and every way it
    can is bounded far below a day. JetStream redelivers an unacknowledged event after the ack wait (30 s), at
    most ``TSUNAGU_MAX_DELIVERIES`` + 1 times with back-off of at most 30 s, so within minutes; after that the
    event is dead-lettered, and a dead-lettered event was never applied (its transaction, claim included,
    rolled back), so its replay finds no row either way. A producer that crashed between the publish ack and
    marking its outbox row republishes on restart, and the server drops it within the 2-minute duplicate
    window; only a producer down for longer republishes a real duplicate, which the row (kept days) still
    stops. Projections also keep each entity's version and ignore anything not newer, so even an event older
    than the retention cannot roll them back. What is NOT covered: deleting a durable consumer and creating it
    again replays the stream from its start (90 days); do not, or create it with a start time (see the
    runbook in deploy/README.md)."""
    cutoff = utcnow() - keep
    with session_scope(engine) as session:
        result = session.execute(delete(processed_model).where(col(processed_model.processed_at) < cutoff))
        return result.rowcount or 0


def backlog(engine: Engine, outbox_model: type[OutboxFields]) -> tuple[int, float]:
    """(unpublished rows, age in seconds of the oldest of them; 0 when none waits), for the metrics."""
    with Session(engine) as session:
        count, oldest = session.exec(
            select(func.count(), func.min(outbox_model.created_at)).where(col(outbox_model.published_at).is_(None))
        ).one()
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:  # SQLite returns naive datetimes (stored as UTC)
        oldest = oldest.replace(tzinfo=utcnow().tzinfo)
    return int(count), max(0.0, (utcnow() - oldest).total_seconds())


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        outbox_model: type[OutboxFields],
        nats: NatsConnection,
        *,
        batch_size: int = 200,
        poll_interval: float = 0.2,
        keep_published: timedelta = timedelta(days=7),
        in_flight: int = 64,
        service: str | None = None,
    ) -> None:
        self.engine = engine
        self.model = outbox_model
        self.nats = nats
        self.service = service or nats.name.removeprefix("tsunagu-")
        self._published = metrics.OUTBOX_PUBLISHED.labels(self.service)
        self._failures = metrics.OUTBOX_PUBLISH_FAILURES.labels(self.service)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.keep_published = keep_published
        self.in_flight = in_flight
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop ``run`` runs on, once it runs
        self._next_prune = 0.0

    def wake(self) -> None:
        """Ask for a publish round now instead of at the next poll (call after a commit). Safe from any thread:
        a commit in a route's worker thread wakes the relay through its event loop (an ``asyncio.Event`` set
        from another thread would not wake a loop that is waiting)."""
        loop = self._loop
        if loop is None or _running_loop() is loop:
            self._wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: the process is stopping
            loop.call_soon_threadsafe(self._wake.set)

    def _pending(self) -> list[tuple[int, str, str, str]]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(self.model.seq, self.model.event_id, self.model.subject, self.model.payload)
                .where(col(self.model.published_at).is_(None))
                .order_by(col(self.model.seq))
                .limit(self.batch_size)
            ).all()
            return [(seq, event_id, subject, payload) for seq, event_id, subject, payload in rows]

    def _mark_published(self, seqs: list[int]) -> None:
        if not seqs:
            return
        # One UPDATE for the round (it was a SELECT of the rows and an UPDATE per row).
        with session_scope(self.engine) as session:
            session.execute(
                update(self.model)
                .where(col(self.model.seq).in_(seqs))
                .values(published_at=utcnow(), attempts=col(self.model.attempts) + 1, last_error=None)
            )

    def _mark_failed(self, seq: int, error: str) -> None:
        with session_scope(self.engine) as session:
            row = session.get(self.model, seq)
            if row is not None:
                row.attempts += 1
                row.last_error = error[:500]

    async def publish_pending(self) -> int:
        """One round: publish what is pending, in order, ``in_flight`` at a time. Returns how many were sent.

        Publishes are pipelined (each still waits for its ack) because with ``sync_interval: always`` every
        ack waits for an fsync: one at a time, a 30,000-expert import would take minutes to propagate.
        A failed row stays pending and is retried; rows after it that succeeded are kept as sent (their
        consumers order by entity version, not by arrival).
        """
        pending = await asyncio.to_thread(self._pending)
        sent: list[int] = []
        failure: tuple[int, BaseException] | None = None
        for start in range(0, len(pending), self.in_flight):
            window = pending[start : start + self.in_flight]
            results = await asyncio.gather(*(self._publish(*row[1:]) for row in window), return_exceptions=True)
            for (seq, *_), result in zip(window, results, strict=True):
                if isinstance(result, BaseException):
                    failure = failure or (seq, result)
                else:
                    sent.append(seq)
            if failure is not None:
                break  # NATS down or slow: stop this round, retry later
        await asyncio.to_thread(self._mark_published, sent)
        self._published.inc(len(sent))
        if failure is not None:
            self._failures.inc()
            seq, error = failure
            log.warning("outbox publish failed; will retry", extra={"outbox_seq": seq, "error": repr(error)})
            await asyncio.to_thread(self._mark_failed, seq, repr(error))
            raise ConnectionError(f"outbox publish failed: {error!r}")
        return len(sent)

    async def _publish(self, event_id: str, subject: str, payload: str) -> None:
        correlation_id = _correlation_id(payload)
        with event_context(event_id, correlation_id):
            await self.nats.js.publish(
                subject,
                payload.encode(),
                headers={"Nats-Msg-Id": event_id, **correlation_headers(correlation_id)},
                timeout=5,
            )

    def prune_published(self) -> int:
        """Delete rows published longer ago than ``keep_published`` (JetStream keeps the events)."""
        cutoff = utcnow() - self.keep_published
        with session_scope(self.engine) as session:
            result = session.execute(
                delete(self.model).where(
                    col(self.model.published_at).is_not(None), col(self.model.published_at) < cutoff
                )
            )
            return result.rowcount or 0

    async def run(self) -> None:
        """Publish rounds until cancelled: at once while full batches come back, else after ``poll_interval``
        or an earlier ``wake()``. A failed round is retried with back-off (doubling up to 5 s), which a
        ``wake()`` also cuts short."""
        self._loop = asyncio.get_running_loop()
        while True:
            sent = await self._retrying()(self._round)
            if sent < self.batch_size:  # a full batch: more may be waiting, go again at once
                await self._sleep_unless_woken(self.poll_interval)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception_type(Exception),  # not CancelledError: stopping the task stops the relay
            wait=wait_exponential(multiplier=2 * self.poll_interval, max=5.0),
            sleep=self._sleep_unless_woken,
        )

    async def _round(self) -> int:
        # Earlier wakes are answered by this round, which reads the outbox after this point. Clearing here,
        # not before the sleep, keeps a wake that comes while the round runs (a commit after its read): the
        # sleep then ends at once instead of leaving that event for the next poll (a lost wake-up made one
        # ranking in ten wait the 200 ms poll: bench_pipeline.py, p95).
        self._wake.clear()
        await self.nats.wait_connected()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + 3600  # hourly is plenty
            await asyncio.to_thread(self.prune_published)
        return await self.publish_pending()

    async def _sleep_unless_woken(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def backlog(self) -> tuple[int, float]:
        return backlog(self.engine, self.model)

    def pending_count(self) -> int:
        with Session(self.engine) as session:
            return session.exec(
                select(func.count()).select_from(self.model).where(col(self.model.published_at).is_(None))
            ).one()


def _correlation_id(payload: str) -> str | None:
    try:
        value = json.loads(payload).get("correlation_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
