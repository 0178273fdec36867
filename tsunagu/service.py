"""What every Tsunagu service process has in common: the runtime (DB, NATS, relay, consumers) and the
FastAPI app around it (request ids, body limit, bilingual errors, /healthz and /readyz)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from tsunagu.auth import principal_dependency
from tsunagu.db import ping
from tsunagu.errors import ApiError, install_error_handlers, invalid_field
from tsunagu.logging import request_id_var
from tsunagu.messaging import ConsumerSpec, EventConsumer, NatsConnection
from tsunagu.outbox import OutboxFields, OutboxRelay
from tsunagu.settings import KernelSettings
from tsunagu.validation import CONTROL_CHARACTER_MESSAGE, has_forbidden_characters

log = logging.getLogger(__name__)
access_log = logging.getLogger("tsunagu.access")


@dataclass
class ServiceRuntime:
    name: str
    settings: KernelSettings
    engine: Engine
    outbox_model: type[OutboxFields] | None = None
    consumer_specs: list[ConsumerSpec] = field(default_factory=list)
    uses_nats: bool = True  # the gateway talks HTTP only
    # More readiness checks (name -> callable), e.g. the search engine.
    readiness_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    # Called when the process stops, after consumers and the relay (e.g. closing an HTTP client).
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    nats: NatsConnection = field(init=False)
    relay: OutboxRelay | None = field(init=False, default=None)
    _tasks: list[asyncio.Task] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.nats = NatsConnection(
            self.settings.nats_url, name=f"tsunagu-{self.name}", stream_replicas=self.settings.nats_stream_replicas
        )
        if self.outbox_model is not None:
            self.relay = OutboxRelay(self.engine, self.outbox_model, self.nats)
        self.principal = principal_dependency(self.name, lambda: self.settings.token_secret)

    async def start(self) -> None:
        if not self.uses_nats:
            return
        await self.nats.start()
        if self.relay is not None:
            self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox-relay"))
        for spec in self.consumer_specs:
            consumer = EventConsumer(
                self.nats,
                spec,
                max_deliveries=self.settings.max_deliveries,
                ack_wait_seconds=self.settings.ack_wait_seconds,
            )
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"{self.name}-consumer-{spec.durable}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.nats.close()
        for hook in self.on_shutdown:
            await hook()
        self.engine.dispose()

    def events_written(self) -> None:
        """Call after committing events: the relay publishes now rather than at its next poll."""
        if self.relay is not None:
            self.relay.wake()

    def readiness(self) -> dict[str, bool]:
        checks = {"database": ping(self.engine)}
        if self.uses_nats:
            checks["nats"] = self.nats.connected
        checks.update({name: check() for name, check in self.readiness_checks.items()})
        return checks


class RequestContextMiddleware:
    """Request id in and out (X-Request-ID), one JSON log line per request, and a hard limit on body
    size before anything parses it."""

    def __init__(self, app, max_body_bytes: int, body_limits: dict[str, int] | None = None) -> None:  # noqa: ANN001
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Path prefix -> larger limit, for the few routes that take files (e.g. a CSV import).
        self.body_limits = body_limits or {}

    def _limit(self, path: str) -> int:
        return next((limit for prefix, limit in self.body_limits.items() if path.startswith(prefix)), self.max_body_bytes)

    async def __call__(self, scope, receive, send):  # noqa: ANN001, ANN204
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        raw_id = headers.get(b"x-request-id", b"").decode("latin-1")[:100]
        request_id = raw_id if raw_id and raw_id.isprintable() else str(uuid.uuid4())
        token = request_id_var.set(request_id)
        too_large = ApiError(413, "too_large", "送信データが大きすぎます", "Request body too large").body()
        max_body_bytes = self._limit(scope.get("path", ""))
        try:
            where = _forbidden_in_url(scope)
            if where is not None:
                ja, _, en = CONTROL_CHARACTER_MESSAGE.partition(" / ")
                body = invalid_field(where, ja, en).body()
                return await JSONResponse(body, status_code=422, headers={"x-request-id": request_id})(scope, receive, send)
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
                response = JSONResponse(too_large, status_code=413, headers={"x-request-id": request_id})
                return await response(scope, receive, send)
            received = 0
            started = time.perf_counter()
            status = 500

            async def limited_receive():  # noqa: ANN202
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > max_body_bytes:
                        raise _BodyTooLarge
                return message

            async def send_with_id(message):  # noqa: ANN001, ANN202
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
                await send(message)

            try:
                await self.app(scope, limited_receive, send_with_id)
            except _BodyTooLarge:
                status = 413
                response = JSONResponse(too_large, status_code=413, headers={"x-request-id": request_id})
                await response(scope, receive, send)
            finally:
                if scope.get("path") not in ("/healthz", "/readyz"):
                    access_log.info(
                        "request",
                        extra={
                            "method": scope.get("method"),
                            "path": scope.get("path"),
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        },
                    )
        finally:
            request_id_var.reset(token)


class _BodyTooLarge(Exception):
    pass


def _forbidden_in_url(scope) -> str | None:  # noqa: ANN001
    """'path' or 'query' when either carries a control character (e.g. %00), which no id or filter has."""
    if has_forbidden_characters(scope.get("path", "")):
        return "path"
    query = unquote_plus(scope.get("query_string", b"").decode("latin-1"), encoding="utf-8", errors="replace")
    if has_forbidden_characters(query):
        return "query"
    return None


def create_service_app(
    runtime: ServiceRuntime,
    routers: list[APIRouter],
    *,
    title: str,
    on_startup: Callable[[], None] | None = None,
    body_limits: dict[str, int] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await asyncio.to_thread(on_startup)
        await runtime.start()
        log.info("service started", extra={"service_name": runtime.name})
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.runtime = runtime
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=runtime.settings.max_body_bytes, body_limits=body_limits
    )
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        checks = runtime.readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    for router in routers:
        app.include_router(router)
    return app
