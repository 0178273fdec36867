"""The gateway process: composition only (routers, the upstream HTTP client, the merged OpenAPI, the web
UI's static files, the notification consumer and the mail sender). Nothing imports this module; the composition root names it by string."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import consumers, mailer, openapi
from gateway.models import ProcessedEvent
from gateway.proxy import upstream_client
from gateway.routes import (
    admin,
    keys,
    notifications,
    oidc,
    proxy,
    reference,
    users,
    web,
    web_admin,
    web_auth,
    web_broker,
    web_engagements,
    web_expert,
    web_hub,
    web_notifications,
    web_search,
    web_sessions,
    web_sme,
)
from gateway.security import client_principal
from gateway.settings import SERVICE_NAME, GatewaySettings
from gateway.web import STATIC_DIR
from gateway.web import errors as web_errors
from tsunagu.db import make_engine
from tsunagu.service import ServiceRuntime, create_service_app

# The web UI's screens, one router per area (issue 10).
WEB_ROUTERS = [
    web_auth.router,
    web_sme.router,
    web_expert.router,
    web_engagements.router,
    web_broker.router,
    web_notifications.router,
    web_admin.router,
    web_hub.router,
    web_sessions.router,
    web_search.router,
]


def create_app(settings: GatewaySettings | None = None, upstream: httpx.AsyncClient | None = None) -> FastAPI:
    """``upstream``: the client for calls to the services (tests pass one that serves them in-process)."""
    settings = settings or GatewaySettings()
    http = upstream or upstream_client(settings)  # pooled, kept alive (gateway/proxy.py)
    engine = make_engine(settings.database_url_for(SERVICE_NAME))
    runtime = ServiceRuntime(
        name=SERVICE_NAME,
        settings=settings,
        engine=engine,
        # The notification consumer (issue 8): NATS is on, so /readyz includes it.
        consumer_specs=consumers.consumer_specs(engine, settings.public_url),
        processed_model=ProcessedEvent,
        on_shutdown=[http.aclose],
    )
    # Callers of the public API hold the client token (audience tsunagu-api, bearer or cookie), not a
    # service token: the kernel's CallerDep reads them the same way in this process.
    runtime.principal = partial(client_principal, settings=settings)
    app = create_service_app(
        runtime,
        [
            keys.router,
            users.router,
            oidc.router,
            notifications.router,
            admin.router,
            reference.router,
            proxy.router,
            web.router,
            *WEB_ROUTERS,
        ],
        title="Tsunagu API（つなぐ）",
        body_limits={
            "/api/v1/admin/experts/import": settings.import_max_bytes,
            "/admin/import": settings.import_max_bytes,
        },
    )
    app.state.http = http
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    openapi.install(app, settings, http)
    web_errors.install(app)  # screens answer error pages; the API keeps its JSON
    _run_mail_sender(app, engine, settings)
    return app


def _run_mail_sender(app: FastAPI, engine, settings: GatewaySettings) -> None:
    """The mail sender (``gateway.mailer``) lives as long as the process serves."""
    serve = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serve(app):
            task = asyncio.create_task(mailer.run_sender(engine, settings), name="gateway-mail-sender")
            try:
                yield
            finally:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
