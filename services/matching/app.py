"""The matching service process: requests API + the projection consumers + the outbox relay.

The scorer runs in its own processes (``tsunagu worker scorer``, see worker.py) on the same database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from services.matching import service
from services.matching.models import OutboxRecord
from services.matching.routes.requests import build_router
from tsunagu.db import make_engine, session_scope
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.messaging import ConsumerSpec, PermanentEventError
from tsunagu.service import ServiceRuntime, create_service_app
from tsunagu.settings import KernelSettings

SERVICE_NAME = "matching"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
PROJECTION_CONSUMER = "matching-projections"


class MatchingSettings(KernelSettings):
    pass


def projection_handlers(runtime: ServiceRuntime):  # noqa: ANN201
    appliers = {
        Subjects.EXPERT_UPSERTED: service.apply_expert_features,
        Subjects.ORGANIZATION_UPSERTED: service.apply_organization,
    }

    def apply(envelopes: list[EventEnvelope]) -> None:
        with session_scope(runtime.engine) as session:  # one transaction for the whole batch
            for envelope in envelopes:
                applier = appliers.get(envelope.type)
                if applier is None:
                    raise PermanentEventError(f"matching does not consume {envelope.type}")
                applier(session, envelope, PROJECTION_CONSUMER)

    async def handle(envelope: EventEnvelope) -> None:
        await asyncio.to_thread(apply, [envelope])

    async def handle_batch(envelopes: list[EventEnvelope]) -> None:
        await asyncio.to_thread(apply, envelopes)

    return handle, handle_batch


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        outbox_model=OutboxRecord,
    )
    handle, handle_batch = projection_handlers(runtime)
    runtime.consumer_specs.append(
        ConsumerSpec(
            durable=PROJECTION_CONSUMER,
            stream="PROFILES",
            subjects=[Subjects.EXPERT_UPSERTED, Subjects.ORGANIZATION_UPSERTED],
            handler=handle,
            batch_handler=handle_batch,
            fetch_batch=200,
        )
    )
    return create_service_app(runtime, [build_router(runtime.principal)], title="Tsunagu matching service")
