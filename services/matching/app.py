"""The matching service process: the requests API, the projection consumers and the outbox relay.
Composition only (nothing imports this module; the launcher names it by string).

A periodic task expires unanswered proposals (jobs.py; MATCHING_EXPIRY_INTERVAL_SECONDS, 0 = off, as in
Kubernetes where a CronJob runs ``tsunagu matching expire-proposals``). The scorer runs in its own processes (``tsunagu worker scorer``, see worker.py) on the same database.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.matching import consumers
from services.matching.models import OutboxRecord, ProcessedEvent
from services.matching.routes import admin, engagements, hub, proposals, requests, sessions
from services.matching.settings import SERVICE_NAME, MatchingSettings
from tsunagu.db import make_engine
from tsunagu.service import ServiceRuntime, create_service_app


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        outbox_model=OutboxRecord,
        processed_model=ProcessedEvent,
    )
    runtime.consumer_specs.extend(consumers.projection_consumers(runtime.engine, runtime.events_written))
    return create_service_app(
        runtime,
        [requests.router, proposals.router, engagements.router, sessions.router, hub.router, admin.router],
        title="Tsunagu matching service",
    )
