"""The search service process (composition only: nothing imports this module; launcher/ names it by
string): the search engines (experts, requests, projects), the index consumers and the search API on one
runtime."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.search.consumers import consumer_specs
from services.search.engine import INDEXES
from services.search.engine import make_engine as make_search_engine
from services.search.models import ProcessedEvent
from services.search.routes import broker, experts
from services.search.settings import SERVICE_NAME, SearchSettings
from tsunagu.db import make_engine
from tsunagu.service import ServiceRuntime, create_service_app


def create_app(settings: SearchSettings | None = None) -> FastAPI:
    settings = settings or SearchSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engines = {
        index: make_search_engine(
            settings.backend,
            data_dir=settings.data_dir,
            meili_url=settings.meili_url,
            meili_key=settings.meili_master_key,
            index=index,
        )
        for index in INDEXES
    }
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        readiness_checks={f"search_engine_{index}": engine.ping for index, engine in engines.items()},
        processed_model=ProcessedEvent,
    )
    runtime.consumer_specs.extend(consumer_specs(runtime.engine, engines))

    async def close_engines() -> None:
        for engine in engines.values():
            await asyncio.to_thread(engine.close)

    def setup_engines() -> None:
        for engine in engines.values():
            engine.setup()

    runtime.on_shutdown.append(close_engines)
    app = create_service_app(
        runtime, [experts.router, broker.router], title="Tsunagu search service", on_startup=setup_engines
    )
    app.state.search_engines = engines
    return app
