"""The profiles service process: the active list API, organisations, and the outbox relay.

Composition only. The composition root (``launcher``) migrates (``settings.MIGRATIONS_DIR``) and serves
``create_app`` with uvicorn as a factory; the one-shot commands are in ``cli.py``. Nothing imports this
module.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.profiles.consumers import CONSUMERS
from services.profiles.models import OutboxRecord
from services.profiles.routes import admin, experts, organizations
from services.profiles.settings import SERVICE_NAME, ProfilesSettings
from tsunagu.db import make_engine
from tsunagu.service import ServiceRuntime, create_service_app


def create_app(settings: ProfilesSettings | None = None) -> FastAPI:
    settings = settings or ProfilesSettings()
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        outbox_model=OutboxRecord,
        consumer_specs=list(CONSUMERS),
    )
    return create_service_app(
        runtime,
        [experts.router, organizations.router, admin.router],
        title="Tsunagu profiles service",
        body_limits={admin.IMPORT_PATH: settings.import_max_bytes},
    )
