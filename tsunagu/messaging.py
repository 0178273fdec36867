"""NATS JetStream: the connection, the streams, durable consumers and the dead-letter subject.

Every event is published with a ``Tsunagu-Correlation-Id`` header (the id of the HTTP request that caused it),
and a consumer takes it from there when the envelope has none, so the log lines of every process that handles
the event carry the request id (tsunagu/logging.py). Consumers count what they handle, their redeliveries
and dead letters, and report their JetStream lag (tsunagu/metrics.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from tsunagu import metrics
from tsunagu.contracts import PermanentEventError
from tsunagu.db import is_database_unavailable
from tsunagu.events import STREAMS, EventEnvelope, Subjects
from tsunagu.logging import event_context

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 120.0
CORRELATION_HEADER = "Tsunagu-Correlation-Id"


def correlation_headers(correlation_id: str | None) -> dict[str, str]:
    """The header that carries the request id beside the event (only when there is one)."""
    return {CORRELATION_HEADER: correlation_id} if correlation_id else {}


def message_correlation_id(message: Msg, envelope: EventEnvelope | None = None) -> str | None:
    """The envelope's correlation id, else the message's header (events written outside a request, or by an
    older producer, may carry it only there)."""
    if envelope is not None and envelope.correlation_id:
        return envelope.correlation_id
    return (message.headers or {}).get(CORRELATION_HEADER) or None


class NatsConnection:
    """A connection that keeps trying: a service starts and serves while NATS is still down."""

    def __init__(self, url: str, name: str, stream_replicas: int = 1) -> None:
        self.url = url
        self.name = name
        self.stream_replicas = stream_replicas
        self.client: Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    @property
    def js(self) -> JetStreamContext:
        if self.client is None:
            raise ConnectionError("NATS is not connected")
        return self.client.jetstream(timeout=5)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name=f"nats-connect-{self.name}")

    async def _connect_forever(self) -> None:
        """Connect (and make sure the streams exist), retrying with back-off from 0.2 s up to 5 s, forever."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),  # not CancelledError: closing stops the loop
            wait=wait_exponential(multiplier=0.2, max=5.0),
            before_sleep=self._log_not_reachable,
        )
        self.client = await retrying(self._connect_once)
        self._connected.set()
        log.info("connected to NATS", extra={"nats_url": self.url})

    async def _connect_once(self) -> Client:
        client = await nats.connect(
            servers=[self.url],
            name=self.name,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            error_cb=self._on_error,
        )
        try:
            await ensure_streams(client.jetstream(timeout=5), self.stream_replicas)
        except Exception:
            with contextlib.suppress(Exception):
                await client.close()  # the next attempt starts from a fresh connection
            raise
        return client

    def _log_not_reachable(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        log.warning("NATS not reachable yet", extra={"nats_url": self.url, "error": repr(error)})

    async def _on_disconnected(self) -> None:
        self._connected.clear()
        log.warning("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        try:
            await ensure_streams(self.js, self.stream_replicas)  # a fresh server has no streams yet
        except Exception as error:
            log.warning("could not ensure streams after reconnect", extra={"error": repr(error)})
        self._connected.set()
        log.info("reconnected to NATS")

    async def _on_error(self, error: Exception) -> None:
        log.debug("NATS client error", extra={"error": repr(error)})

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout=timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.client is not None and not self.client.is_closed:
            try:
                await self.client.drain()
            except Exception:
                await self.client.close()


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    for name, subjects in STREAMS.items():
        config = StreamConfig(
            name=name,
            subjects=subjects,
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=90 * 24 * 3600.0,  # events are kept 90 days for replay and audit
        )
        try:
            await js.stream_info(name)
            await js.update_stream(config)
        except NotFoundError:
            await js.add_stream(config)


Handler = Callable[[EventEnvelope], Awaitable[None]]
BatchHandler = Callable[[list[EventEnvelope]], Awaitable[None]]


@dataclass
class ConsumerSpec:
    durable: str
    stream: str
    subjects: list[str]
    handler: Handler
    # Optional: applies a whole fetched batch at once (one transaction, one index write). If it fails,
    # the batch is handled event by event with ``handler``, so one bad event cannot hold back the rest.
    batch_handler: BatchHandler | None = None
    fetch_batch: int = 20  # events fetched at once (more suits a batch handler)


class EventConsumer:
    """A durable pull consumer with explicit ack, bounded redelivery and a dead-letter subject.

    Several processes may run the same durable: JetStream hands each event to one of them.
    """

    def __init__(
        self,
        nats_connection: NatsConnection,
        spec: ConsumerSpec,
        *,
        max_deliveries: int = 5,
        ack_wait_seconds: float = 30.0,
        service: str | None = None,
    ) -> None:
        self.nats = nats_connection
        self.spec = spec
        self.max_deliveries = max_deliveries
        self.ack_wait_seconds = ack_wait_seconds
        self.service = service or nats_connection.name.removeprefix("tsunagu-")
        labels = (self.service, spec.durable)
        self._handled = {
            outcome: metrics.CONSUMER_EVENTS.labels(*labels, outcome)
            for outcome in ("acked", "retried", "dead_lettered")
        }
        self._redeliveries = metrics.CONSUMER_REDELIVERIES.labels(*labels)
        self._handle_seconds = metrics.CONSUMER_HANDLE_SECONDS.labels(*labels)
        self._dead_letters = metrics.DEAD_LETTERS.labels(*labels)

    async def sample(self) -> None:
        """Read the durable's lag from JetStream into the gauges (called by the process's metrics sampler)."""
        info = await self.nats.js.consumer_info(self.spec.stream, self.spec.durable)
        metrics.CONSUMER_PENDING.labels(self.service, self.spec.durable).set(info.num_pending or 0)
        metrics.CONSUMER_ACK_PENDING.labels(self.service, self.spec.durable).set(info.num_ack_pending or 0)

    def _count_received(self, message: Msg) -> None:
        if message.metadata.num_delivered > 1:
            self._redeliveries.inc()

    async def _subscribe(self):
        js = self.nats.js
        config = ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_seconds,
            # One more than we count ourselves, so the server never gives up before we dead-letter.
            max_deliver=self.max_deliveries + 1,
            filter_subjects=self.spec.subjects,
            max_ack_pending=1000,
        )
        await js.add_consumer(self.spec.stream, config=config)
        return await js.pull_subscribe_bind(self.spec.durable, stream=self.spec.stream)

    async def run(self) -> None:
        while True:
            try:
                await self.nats.wait_connected()
                subscription = await self._subscribe()
                try:
                    await self._consume(subscription)
                finally:
                    # Release the inbox (the durable stays): a subscription left behind holds a drain,
                    # and so the process's shutdown, until the drain times out.
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("consumer loop restarting", extra={"consumer": self.spec.durable, "error": repr(error)})
                await asyncio.sleep(0.5)

    async def _consume(self, subscription) -> None:
        while True:
            try:
                messages = await subscription.fetch(self.spec.fetch_batch, timeout=1)
            except TimeoutError:
                # Nothing came within the second. nats-py raises its own TimeoutError, and also asyncio's (the
                # built-in one) when the second ran out between its two pull requests; the latter used to end
                # the loop ("consumer loop restarting"): a new subscription and half a second's pause, every
                # few tens of seconds on an idle consumer.
                continue
            if self.spec.batch_handler is not None and len(messages) > 1:
                await self.handle_batch(messages)
            else:
                for message in messages:
                    await self.handle(message)

    async def handle_batch(self, messages: list[Msg]) -> None:
        envelopes: list[EventEnvelope] = []
        try:
            envelopes = [EventEnvelope.from_json(message.data) for message in messages]
            # One request's events (e.g. one import) keep its id in the batch's log lines and new events.
            ids = {
                message_correlation_id(message, envelope) for message, envelope in zip(messages, envelopes, strict=True)
            }
            with event_context(None, ids.pop() if len(ids) == 1 else None), self._handle_seconds.time():
                await self.spec.batch_handler(envelopes)  # type: ignore[misc]
        except Exception as error:
            log.info(
                "batch failed; handling its events one by one",
                extra={"consumer": self.spec.durable, "error": repr(error)},
            )
            for message in messages:
                await self.handle(message)
            return
        for message in messages:
            self._count_received(message)
            await message.ack()
            self._handled["acked"].inc()

    async def handle(self, message: Msg) -> None:
        deliveries = message.metadata.num_delivered
        self._count_received(message)
        try:
            envelope = EventEnvelope.from_json(message.data)
        except (ValidationError, ValueError) as error:
            with event_context(None, message_correlation_id(message)):
                await self._dead_letter(message, f"malformed envelope: {error}", deliveries)
            return
        with event_context(envelope.id, message_correlation_id(message, envelope)):
            try:
                with self._handle_seconds.time():
                    await self._handle_waiting_for_database(message, envelope)
            except PermanentEventError as error:
                await self._dead_letter(message, f"permanent: {error}", deliveries)
                return
            except Exception as error:
                if deliveries >= self.max_deliveries:
                    await self._dead_letter(message, f"failed {deliveries} times: {error!r}", deliveries)
                else:
                    log.warning(
                        "handler failed; will redeliver", extra={"consumer": self.spec.durable, "error": repr(error)}
                    )
                    await message.nak(delay=min(0.5 * 2**deliveries, 30))
                    self._handled["retried"].inc()
                return
            await message.ack()
            self._handled["acked"].inc()

    async def _handle_waiting_for_database(self, message: Msg, envelope: EventEnvelope) -> None:
        """Run the handler; while the database cannot be reached (a PostgreSQL restart, a failover), keep the
        event (``in_progress`` holds its ack timer) and try again, backing off up to half the ack wait, without
        spending its deliveries: an outage longer than the retries must not dead-letter good events. Every
        event needs the database, so waiting here holds back nothing that could go on."""
        delay = 0.25
        while True:
            try:
                return await self.spec.handler(envelope)
            except Exception as error:
                if not is_database_unavailable(error):
                    raise
                log.warning(
                    "database unavailable; the event waits for it",
                    extra={"consumer": self.spec.durable, "error": str(error).splitlines()[0][:300]},
                )
            with contextlib.suppress(Exception):
                await message.in_progress()
            await asyncio.sleep(delay)
            delay = min(delay * 2, max(0.5, self.ack_wait_seconds / 2))

    async def _dead_letter(self, message: Msg, reason: str, deliveries: int) -> None:
        stream_seq = message.metadata.sequence.stream
        record = {
            "consumer": self.spec.durable,
            "stream": self.spec.stream,
            "stream_sequence": stream_seq,
            "original_subject": message.subject,
            "deliveries": deliveries,
            "error": reason[:2000],
            "failed_at": datetime.now(UTC).isoformat(),
            "original_payload": message.data.decode("utf-8", errors="replace"),
        }
        await self.nats.js.publish(
            f"{Subjects.DEAD_LETTER_PREFIX}.{self.spec.durable}",
            json.dumps(record, ensure_ascii=False).encode(),
            headers={
                "Nats-Msg-Id": f"dlq:{self.spec.durable}:{self.spec.stream}:{stream_seq}",
                **correlation_headers(message_correlation_id(message)),
            },
            timeout=5,
        )
        log.error("event dead-lettered", extra={"consumer": self.spec.durable, "reason": reason[:300]})
        await message.ack()  # the dead letter holds it now; the consumer moves on
        self._dead_letters.inc()
        self._handled["dead_lettered"].inc()


async def dead_letters_stored(js: JetStreamContext) -> int:
    """How many dead letters the DEADLETTER stream holds now."""
    info = await js.stream_info("DEADLETTER")
    return info.state.messages or 0


async def list_dead_letters(js: JetStreamContext, limit: int = 100) -> list[dict[str, Any]]:
    """The newest dead letters (stream sequence + record), for the admin screen."""
    info = await js.stream_info("DEADLETTER")
    last, first = info.state.last_seq, info.state.first_seq
    records: list[dict[str, Any]] = []
    seq = last
    while seq >= first and seq > 0 and len(records) < limit:
        try:
            raw = await js.get_msg("DEADLETTER", seq)
            records.append({"sequence": seq, **json.loads(raw.data)})
        except NotFoundError:
            pass
        seq -= 1
    return records


async def replay_dead_letter(js: JetStreamContext, sequence: int) -> str:
    """Publish a dead letter's original event again to its original subject; returns that subject."""
    raw = await js.get_msg("DEADLETTER", sequence)
    record = json.loads(raw.data)
    await js.publish(
        record["original_subject"],
        record["original_payload"].encode(),
        headers={
            "Nats-Msg-Id": f"replay:{record['stream']}:{record['stream_sequence']}:{sequence}",
            **correlation_headers((raw.headers or {}).get(CORRELATION_HEADER)),
        },
        timeout=5,
    )
    return record["original_subject"]
