"""The profiles service process: the active list API, organisations, and the outbox relay.

The CLI migrates (``tsunagu.migrations.upgrade(MIGRATIONS_DIR, url)``) and serves ``create_app`` with
uvicorn as a factory. One-shot commands for the CLI are re-exported here: ``import_experts_file``,
``export_experts_file`` and ``run_freshness_job``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tsunagu.db import make_engine
from tsunagu.service import ServiceRuntime, create_service_app

from services.profiles.freshness import run_freshness_job
from services.profiles.importer import export_experts_file, import_experts_file
from services.profiles.models import OutboxRecord
from services.profiles.routes import admin, experts, organizations
from services.profiles.service import ProfilesService
from services.profiles.settings import ProfilesSettings

SERVICE_NAME = "profiles"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

__all__ = [
    "MIGRATIONS_DIR",
    "SERVICE_NAME",
    "ProfilesSettings",
    "create_app",
    "export_experts_file",
    "import_experts_file",
    "run_freshness_job",
]


def create_app(settings: ProfilesSettings | None = None) -> FastAPI:
    settings = settings or ProfilesSettings()
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        outbox_model=OutboxRecord,
    )
    service = ProfilesService(runtime.engine, settings, runtime.events_written)
    routers = [
        experts.build_router(service, runtime.principal),
        organizations.build_router(service, runtime.principal),
        admin.build_router(service, runtime.principal),
    ]
    app = create_service_app(
        runtime,
        routers,
        title="Tsunagu profiles service",
        body_limits={admin.IMPORT_PATH: settings.import_max_bytes},
    )
    app.state.profiles = service
    return app
