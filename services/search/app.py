"""The search service process: the index consumer and the public search API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.search import service
from services.search.engine import make_engine as make_search_engine
from services.search.routes import router
from tsunagu.db import make_engine, session_scope
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.messaging import ConsumerSpec
from tsunagu.service import ServiceRuntime, create_service_app
from tsunagu.settings import KernelSettings

SERVICE_NAME = "search"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
INDEX_CONSUMER = "search-index"


class SearchSettings(KernelSettings):
    backend: str = Field(default="embedded", alias="SEARCH_BACKEND", pattern="^(embedded|meilisearch)$")
    meili_url: str | None = Field(default=None, alias="MEILI_URL")
    meili_master_key: str | None = Field(default=None, alias="MEILI_MASTER_KEY")


def create_app(settings: SearchSettings | None = None) -> FastAPI:
    settings = settings or SearchSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_search_engine(
        settings.backend, data_dir=settings.data_dir, meili_url=settings.meili_url, meili_key=settings.meili_master_key
    )
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        readiness_checks={"search_engine": engine.ping},
    )

    def apply(envelopes: list[EventEnvelope]) -> None:
        with session_scope(runtime.engine) as session:
            service.apply_published(session, engine, envelopes, INDEX_CONSUMER)

    async def handle(envelope: EventEnvelope) -> None:
        await asyncio.to_thread(apply, [envelope])

    async def handle_batch(envelopes: list[EventEnvelope]) -> None:
        await asyncio.to_thread(apply, envelopes)

    runtime.consumer_specs.append(
        ConsumerSpec(
            durable=INDEX_CONSUMER,
            stream="PROFILES",
            subjects=[Subjects.EXPERT_PUBLISHED],
            handler=handle,
            batch_handler=handle_batch,
        )
    )
    app = create_service_app(runtime, [router], title="Tsunagu search service", on_startup=engine.setup)
    app.state.search_engine = engine
    return app
