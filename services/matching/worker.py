"""The scorer worker: its own process; several share the durable consumer "scorer". Composition only:
the handler is in consumers.py, the ranking in scoring/.

Each worker keeps the expert projection in memory as numpy arrays (refreshed incrementally from the
matching database), ranks every submitted request, and writes the ranking and its
``matching.request.ranked`` event in one transaction; its own outbox relay publishes the event. Beside
that, it re-ranks the open requests an expert change may have moved (the ``rescorer`` consumer marks them,
the re-ranking loop ranks them again).

Scorer timings for Prometheus (tsunagu/metrics.py serves them): ``tsunagu_scorer_rank_seconds``, the time
to handle one submitted request (feature refresh, ranking, and the commit of the ranking and its event; for a
batch ranked in one transaction, the batch's time shared among its requests), and
``tsunagu_scorer_submit_to_ranked_seconds``, from the submission (the event's ``occurred_at``) until its
ranking is committed, which includes the wait in the outbox and in JetStream: what an SME waits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from prometheus_client import Histogram

from services.matching import consumers
from services.matching.models import OutboxRecord, ProcessedEvent
from services.matching.scoring.features import FeatureStore
from services.matching.settings import SERVICE_NAME, MatchingSettings
from tsunagu.db import make_engine, utcnow
from tsunagu.events import EventEnvelope
from tsunagu.messaging import BatchHandler, Handler
from tsunagu.metrics import LATENCY_BUCKETS
from tsunagu.service import ServiceRuntime

log = logging.getLogger(__name__)

RANK_SECONDS = Histogram(
    "tsunagu_scorer_rank_seconds",
    "Time to rank one submitted request: feature refresh, ranking, and committing the ranking and its event.",
    buckets=LATENCY_BUCKETS,
)
SUBMIT_TO_RANKED_SECONDS = Histogram(
    "tsunagu_scorer_submit_to_ranked_seconds",
    "From a request's submission (its event's occurred_at) until its ranking is committed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)


def timed(handler: Handler) -> Handler:
    """The scorer's handler, with its timings recorded (only when it returns: a failure is retried)."""

    async def handle(envelope: EventEnvelope) -> None:
        started = time.perf_counter()
        await handler(envelope)
        RANK_SECONDS.observe(time.perf_counter() - started)
        SUBMIT_TO_RANKED_SECONDS.observe(max(0.0, (utcnow() - envelope.occurred_at).total_seconds()))

    return handle


def timed_batch(handler: BatchHandler) -> BatchHandler:
    """The scorer's batch handler, timed like ``timed``: each request of the batch is counted, with the
    batch's time shared equally (the refresh and the commit are the batch's, not one request's)."""

    async def handle(envelopes: list[EventEnvelope]) -> None:
        started = time.perf_counter()
        await handler(envelopes)
        each = (time.perf_counter() - started) / max(1, len(envelopes))
        now = utcnow()
        for envelope in envelopes:
            RANK_SECONDS.observe(each)
            SUBMIT_TO_RANKED_SECONDS.observe(max(0.0, (now - envelope.occurred_at).total_seconds()))

    return handle


def build_runtime(settings: MatchingSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(
        name=f"{SERVICE_NAME}-scorer",
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        outbox_model=OutboxRecord,
        processed_model=ProcessedEvent,
    )
    store = FeatureStore(runtime.engine)
    first_rankings = consumers.FirstRankings()  # re-ranking gives way while submitted requests are ranked
    for spec in consumers.scorer_consumers(runtime.engine, store, runtime.events_written, first_rankings):
        spec.handler = timed(spec.handler)
        if spec.batch_handler is not None:
            spec.batch_handler = timed_batch(spec.batch_handler)
        runtime.consumer_specs.append(spec)
    reranker = consumers.RerankLoop(runtime.engine, store, runtime.events_written, first_rankings)
    runtime.consumer_specs.extend(consumers.rerank_consumers(runtime.engine, store, reranker.wake))
    runtime.background.append(reranker.run)
    # Warm the matrix before taking work, so the first request is not the slow one.
    store.refresh()
    return runtime


async def run_worker(settings: MatchingSettings | None = None) -> None:
    runtime = build_runtime(settings or MatchingSettings())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    log.info("scorer worker started")
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        log.info("scorer worker stopped")
