"""Transactional outbox: the event row commits with the state change, a relay publishes it later.

A service adds the event in the same session as its change (``add_event``); if the transaction rolls
back, no event exists. The relay (``OutboxRelay``) publishes pending rows to JetStream with
``Nats-Msg-Id`` = event id, waits for the publish ack, then marks the row published. With NATS down the
rows wait; a crash between ack and mark republishes the row, which the server's duplicate window drops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Text, delete
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from tsunagu.db import session_scope, utcnow
from tsunagu.events import EventEnvelope
from tsunagu.logging import event_context
from tsunagu.messaging import NatsConnection

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
    processed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


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
            {"event_id": envelope.id, "subject": envelope.type, "payload": envelope.model_dump_json(), "created_at": now, "attempts": 0}
            for envelope in envelopes
        ],
    )


def claim_event(session: Session, processed_model: type[ProcessedEventFields], event_id: str, consumer: str) -> bool:
    """True the first time a consumer sees an event id (inside the handler's transaction), else False."""
    if session.get(processed_model, (event_id, consumer)) is not None:
        return False
    session.add(processed_model(event_id=event_id, consumer=consumer))
    return True


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
    ) -> None:
        self.engine = engine
        self.model = outbox_model
        self.nats = nats
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.keep_published = keep_published
        self.in_flight = in_flight
        self._wake = asyncio.Event()
        self._next_prune = 0.0

    def wake(self) -> None:
        """Ask for a publish round now instead of at the next poll (call after a commit)."""
        self._wake.set()

    def _pending(self) -> list[tuple[int, str, str, str]]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(self.model)
                .where(col(self.model.published_at).is_(None))
                .order_by(col(self.model.seq))
                .limit(self.batch_size)
            ).all()
            return [(row.seq, row.event_id, row.subject, row.payload) for row in rows]

    def _mark_published(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with session_scope(self.engine) as session:
            now = utcnow()
            for row in session.exec(select(self.model).where(col(self.model.seq).in_(seqs))):
                row.published_at = now
                row.attempts += 1
                row.last_error = None

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
        if failure is not None:
            seq, error = failure
            log.warning("outbox publish failed; will retry", extra={"outbox_seq": seq, "error": repr(error)})
            await asyncio.to_thread(self._mark_failed, seq, repr(error))
            raise ConnectionError(f"outbox publish failed: {error!r}")
        return len(sent)

    async def _publish(self, event_id: str, subject: str, payload: str) -> None:
        with event_context(event_id):
            await self.nats.js.publish(subject, payload.encode(), headers={"Nats-Msg-Id": event_id}, timeout=5)

    def prune_published(self) -> int:
        """Delete rows published longer ago than ``keep_published`` (JetStream keeps the events)."""
        cutoff = utcnow() - self.keep_published
        with session_scope(self.engine) as session:
            result = session.execute(
                delete(self.model).where(col(self.model.published_at).is_not(None), col(self.model.published_at) < cutoff)
            )
            return result.rowcount or 0

    async def run(self) -> None:
        backoff = self.poll_interval
        while True:
            try:
                await self.nats.wait_connected()
                if time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + 3600  # hourly is plenty
                    await asyncio.to_thread(self.prune_published)
                sent = await self.publish_pending()
                backoff = self.poll_interval
                if sent == self.batch_size:
                    continue  # more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                backoff = min(backoff * 2, 5.0)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            except TimeoutError:
                pass

    def pending_count(self) -> int:
        from sqlalchemy import func

        with Session(self.engine) as session:
            return session.exec(
                select(func.count()).select_from(self.model).where(col(self.model.published_at).is_(None))
            ).one()
