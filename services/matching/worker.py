"""The scorer worker: its own process; several share the durable consumer "scorer".

Each worker keeps the expert projection in memory as numpy arrays (refreshed incrementally from the
matching database), ranks every submitted request, and writes the ranking and its
``matching.request.ranked`` event in one transaction; its own outbox relay publishes the event.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from services.matching import service
from services.matching.app import SERVICE_NAME, MatchingSettings
from services.matching.models import OutboxRecord
from services.matching.scoring.features import FeatureStore
from tsunagu.db import make_engine, session_scope
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.messaging import ConsumerSpec
from tsunagu.service import ServiceRuntime

SCORER_CONSUMER = "scorer"
log = logging.getLogger(__name__)


def build_runtime(settings: MatchingSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(
        name=f"{SERVICE_NAME}-scorer",
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        outbox_model=OutboxRecord,
    )
    store = FeatureStore(runtime.engine)

    def rank(envelope: EventEnvelope) -> None:
        started = time.perf_counter()
        with session_scope(runtime.engine) as session:
            ranking = service.rank_submitted_request(session, store, envelope, SCORER_CONSUMER)
        if ranking is not None:
            log.info(
                "request ranked",
                extra={
                    "request_id_ranked": ranking.request_id,
                    "candidates": ranking.candidate_count,
                    "experts_known": store.matrix.size,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )

    async def handle(envelope: EventEnvelope) -> None:
        await asyncio.to_thread(rank, envelope)
        runtime.events_written()

    runtime.consumer_specs.append(
        ConsumerSpec(durable=SCORER_CONSUMER, stream="MATCHING", subjects=[Subjects.REQUEST_SUBMITTED], handler=handle)
    )
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
