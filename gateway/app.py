"""The gateway process."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import admin_routes, proxy, reference_routes
from gateway.settings import GatewaySettings
from gateway.users import routes as user_routes
from gateway.web import routes as web_routes
from tsunagu.db import make_engine
from tsunagu.service import ServiceRuntime, create_service_app

SERVICE_NAME = "gateway"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    http = httpx.AsyncClient(timeout=settings.upstream_timeout_seconds)
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=make_engine(settings.database_url_for(SERVICE_NAME)),
        uses_nats=False,
        on_shutdown=[http.aclose],
    )
    app = create_service_app(
        runtime,
        [user_routes.router, admin_routes.router, reference_routes.router, proxy.build_router(), web_routes.router],
        title="Tsunagu API（つなぐ）",
        body_limits={"/api/v1/admin/experts/import": settings.import_max_bytes},
    )
    app.state.settings = settings
    app.state.engine = runtime.engine
    app.state.http = http
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")

    return app
