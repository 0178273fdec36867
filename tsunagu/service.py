"""What every Tsunagu service process has in common: the runtime (DB, NATS, relay, consumers) and the
FastAPI app around it (request ids, body limit, bilingual errors, /healthz and /readyz).

Observability (issue 13) starts here too, so every process gets the same: with ``TSUNAGU_METRICS_PORT`` set,
``ServiceRuntime.start`` serves Prometheus metrics on that port and samples the gauges that need a query
(outbox backlog, consumer lag, dead letters, dependencies) every ``TSUNAGU_METRICS_SAMPLE_SECONDS``; the app
records request latency by route template (tsunagu/metrics.py). A consuming process also prunes its
``processed_events`` hourly (tsunagu/outbox.py ``prune_processed``)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote_plus

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from tsunagu import metrics
from tsunagu.auth import PublicKeys, principal_dependency
from tsunagu.db import ping
from tsunagu.errors import ApiError, install_error_handlers, invalid_field
from tsunagu.logging import request_id_var
from tsunagu.messaging import ConsumerSpec, EventConsumer, NatsConnection, dead_letters_stored
from tsunagu.openapi import install_error_docs
from tsunagu.outbox import OutboxFields, OutboxRelay, ProcessedEventFields, prune_processed
from tsunagu.settings import KernelSettings
from tsunagu.validation import CONTROL_CHARACTER_MESSAGE, has_forbidden_characters

log = logging.getLogger(__name__)
access_log = logging.getLogger("tsunagu.access")
PRUNE_INTERVAL_SECONDS = 3600.0  # processed_events pruning: hourly is plenty for a retention of days


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
    # Long-running loops started with the consumers and cancelled with them (e.g. the scorer's re-ranking).
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The process's processed_events table, pruned hourly after the retention window (None: it has none).
    processed_model: type[ProcessedEventFields] | None = None
    nats: NatsConnection = field(init=False)
    relay: OutboxRelay | None = field(init=False, default=None)
    consumers: list[EventConsumer] = field(init=False, default_factory=list)
    _tasks: list[asyncio.Task] = field(init=False, default_factory=list)
    _serves_metrics: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.nats = NatsConnection(
            self.settings.nats_url, name=f"tsunagu-{self.name}", stream_replicas=self.settings.nats_stream_replicas
        )
        if self.outbox_model is not None:
            self.relay = OutboxRelay(self.engine, self.outbox_model, self.nats, service=self.name)
        # Callers are verified with the gateway's published public keys; no service holds a signing secret.
        keys = (
            PublicKeys.from_jwks(self.settings.gateway_jwks)
            if self.settings.gateway_jwks
            else PublicKeys.from_url(self.settings.gateway_jwks_url)
        )
        self.principal = principal_dependency(self.name, keys)

    async def start(self) -> None:
        if self.settings.metrics_port:
            self._serves_metrics = metrics.MetricsServer.start(self.settings.metrics_port, self.settings.metrics_host)
            self._tasks.append(asyncio.create_task(self._sample_forever(), name=f"{self.name}-metrics-sampler"))
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
                service=self.name,
            )
            self.consumers.append(consumer)
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"{self.name}-consumer-{spec.durable}"))
        if self.processed_model is not None:
            self._tasks.append(asyncio.create_task(self._prune_forever(), name=f"{self.name}-processed-pruning"))
        for loop in self.background:
            self._tasks.append(asyncio.create_task(loop(), name=f"{self.name}-{getattr(loop, '__name__', 'loop')}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.consumers.clear()
        if self._serves_metrics:
            metrics.MetricsServer.stop()
            self._serves_metrics = False
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

    def prune_processed_events(self) -> int:
        """Forget applied event ids older than the retention window (why that is safe: outbox.prune_processed)."""
        if self.processed_model is None:
            return 0
        keep = timedelta(days=self.settings.processed_events_retention_days)
        pruned = prune_processed(self.engine, self.processed_model, keep)
        metrics.PROCESSED_EVENTS_PRUNED.labels(self.name).inc(pruned)
        if pruned:
            log.info("processed events pruned", extra={"pruned": pruned})
        return pruned

    async def _prune_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.prune_processed_events)
            except Exception as error:  # the database may be away: try again next hour
                log.warning("pruning processed events failed", extra={"error": repr(error)})
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)

    async def sample_metrics(self) -> None:
        """Refresh the gauges that need a query: dependencies (what /readyz checks), the outbox backlog, each
        consumer's JetStream lag and the stored dead letters. Queries run in a thread, JetStream calls on the
        event loop (bounded by their timeouts); one failing read leaves the others fresh."""
        checks = await asyncio.to_thread(self.readiness)
        for dependency, up in checks.items():
            metrics.DEPENDENCY_UP.labels(self.name, dependency).set(1 if up else 0)
        if self.relay is not None and checks.get("database"):
            try:
                count, age = await asyncio.to_thread(self.relay.backlog)
            except Exception as error:
                log.debug("outbox backlog not sampled", extra={"error": repr(error)})
            else:
                metrics.OUTBOX_PENDING.labels(self.name).set(count)
                metrics.OUTBOX_OLDEST_AGE.labels(self.name).set(age)
        if not (self.uses_nats and self.nats.connected):
            return
        for consumer in list(self.consumers):
            try:
                await consumer.sample()
            except Exception as error:
                log.debug("consumer lag not sampled", extra={"consumer": consumer.spec.durable, "error": repr(error)})
        try:
            metrics.DEAD_LETTERS_STORED.labels(self.name).set(await dead_letters_stored(self.nats.js))
        except Exception as error:
            log.debug("dead letters not sampled", extra={"error": repr(error)})

    async def _sample_forever(self) -> None:
        while True:
            try:
                await self.sample_metrics()
            except Exception as error:
                log.debug("metrics sampling failed", extra={"error": repr(error)})
            await asyncio.sleep(self.settings.metrics_sample_seconds)


class RequestContextMiddleware:
    """Request id in and out (X-Request-ID), one JSON log line per request, and a hard limit on body
    size before anything parses it."""

    def __init__(self, app, max_body_bytes: int, body_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Path prefix -> larger limit, for the few routes that take files (e.g. a CSV import).
        self.body_limits = body_limits or {}

    def _limit(self, path: str) -> int:
        return next(
            (limit for prefix, limit in self.body_limits.items() if path.startswith(prefix)), self.max_body_bytes
        )

    async def __call__(self, scope, receive, send):
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
                return await JSONResponse(body, status_code=422, headers={"x-request-id": request_id})(
                    scope, receive, send
                )
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
                response = JSONResponse(too_large, status_code=413, headers={"x-request-id": request_id})
                return await response(scope, receive, send)
            received = 0
            started = time.perf_counter()
            status = 500

            async def limited_receive():
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > max_body_bytes:
                        raise _BodyTooLarge
                return message

            async def send_with_id(message):
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = [*list(message["headers"]), (b"x-request-id", request_id.encode())]
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


def _forbidden_in_url(scope) -> str | None:
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
    app.add_middleware(metrics.HttpMetricsMiddleware, service=runtime.name)  # outermost: counts every answer
    install_error_handlers(app)
    install_error_docs(app)  # every error response documented with the ApiError body

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
