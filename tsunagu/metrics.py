"""Prometheus metrics every process shares, and the small HTTP server that serves them.

Why a server of its own: the metrics are for the cluster's Prometheus, not for the public. Each process serves
``/metrics`` on ``TSUNAGU_METRICS_PORT`` (Kubernetes: 9100, the container port named ``metrics``), a port the
Ingress never routes to, so no route of the public API (and no gateway proxy rule) can expose them. Unset, no
server starts (unit tests build many apps in one process). ``make run`` gives each process its own port
(launcher/runner.py; printed at start).

Why these labels: every series carries ``service`` (gateway, profiles, matching, search, matching-scorer), so a
rule or a dashboard can group by it whatever the scrape configuration adds. HTTP latency is labelled by the
route's *template* (``/requests/{request_id}``, never the raw path) and by the status class (``2xx``...), so
the number of series stays bounded however many ids clients send; a path no route matches is ``<unmatched>``.

This module is a leaf of the kernel: it defines the metrics and serves them. The code that knows the values
records them (``tsunagu.messaging`` consumers, ``tsunagu.outbox`` relay, ``tsunagu.service`` sampler); a
service's own metrics (the scorer's timings, the mails) are defined beside their code on the same registry.
Every metric, and the alert that watches it, is listed in docs/observability.md.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# Seconds; from a cached read (~1 ms) to a slow CSV import. Shared by the HTTP and consumer histograms.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUEST_SECONDS = Histogram(
    "tsunagu_http_request_duration_seconds",
    "Time from the first byte of a request to the end of its response, by route template and status class.",
    ["service", "method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)

OUTBOX_PENDING = Gauge(
    "tsunagu_outbox_pending_events", "Outbox rows committed but not yet published to NATS.", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "tsunagu_outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none waits).",
    ["service"],
)
OUTBOX_PUBLISHED = Counter("tsunagu_outbox_published_total", "Outbox rows published and acknowledged.", ["service"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "tsunagu_outbox_publish_failures_total", "Relay rounds stopped by a failed publish (retried).", ["service"]
)

CONSUMER_PENDING = Gauge(
    "tsunagu_consumer_pending_events",
    "Events in the stream the durable consumer has not yet been given (JetStream num_pending).",
    ["service", "consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "tsunagu_consumer_ack_pending_events",
    "Events given to the durable consumer and not yet acknowledged (JetStream num_ack_pending).",
    ["service", "consumer"],
)
CONSUMER_EVENTS = Counter(
    "tsunagu_consumer_events_total",
    "Events handled by this process, by outcome: acked, retried (nak'ed for redelivery), dead_lettered.",
    ["service", "consumer", "outcome"],
)
CONSUMER_REDELIVERIES = Counter(
    "tsunagu_consumer_redeliveries_total",
    "Events received again (JetStream num_delivered > 1): a handler failed or took longer than the ack wait.",
    ["service", "consumer"],
)
CONSUMER_HANDLE_SECONDS = Histogram(
    "tsunagu_consumer_handle_seconds",
    "Time to handle one event, or one batch applied at once.",
    ["service", "consumer"],
    buckets=LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "tsunagu_dead_letters_total", "Events this process sent to the dead-letter subject.", ["service", "consumer"]
)
DEAD_LETTERS_STORED = Gauge(
    "tsunagu_dead_letters_stored",
    "Dead letters held in the DEADLETTER stream now (replayed ones stay until the stream's retention).",
    ["service"],
)

DEPENDENCY_UP = Gauge(
    "tsunagu_dependency_up",
    "1 when a dependency answers (database, nats, the search engine), else 0: what /readyz checks.",
    ["service", "dependency"],
)
PROCESSED_EVENTS_PRUNED = Counter(
    "tsunagu_processed_events_pruned_total",
    "processed_events rows deleted after the retention window.",
    ["service"],
)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def route_template(scope: dict[str, Any]) -> str:
    """The template of the route that served the request (set by the router on the ASGI scope)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED_ROUTE
    return scope.get("root_path", "") + template


class HttpMetricsMiddleware:
    """Pure ASGI: times every HTTP request and records it by route template and status class. Outermost, so
    that answers given before routing (413, 422 for a control character in the URL) are counted too."""

    def __init__(self, app, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_recording_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            HTTP_REQUEST_SECONDS.labels(
                self.service, scope.get("method", ""), route_template(scope), status_class(status)
            ).observe(time.perf_counter() - started)


class MetricsServer:
    """The process's ``/metrics`` endpoint (prometheus-client's threaded HTTP server): it answers from its
    own thread, so a scrape never waits for the event loop and a busy event loop never delays a scrape.
    One per process: a second ``start`` (another app built in the same process) leaves the first serving."""

    _lock = threading.Lock()
    _server: Any = None
    _thread: threading.Thread | None = None
    port: int | None = None

    @classmethod
    def start(cls, port: int, host: str = "0.0.0.0") -> bool:  # noqa: S104 - the pod's metrics port
        with cls._lock:
            if cls._server is not None:
                return False
            cls._server, cls._thread = start_http_server(port, addr=host, registry=REGISTRY)
            cls.port = port
        log.info("metrics served", extra={"metrics_port": port, "metrics_host": host})
        return True

    @classmethod
    def stop(cls) -> None:
        with cls._lock:
            if cls._server is None:
                return
            cls._server.shutdown()
            cls._server.server_close()
            if cls._thread is not None:
                cls._thread.join(timeout=5)
            cls._server = cls._thread = cls.port = None
