"""tsunagu/metrics.py and what records into it: HTTP latency by route template (never the raw path), the
metrics server, the runtime's sampler (outbox backlog and age, dependencies, consumer lag, dead letters),
the consumers' counters (redeliveries, outcomes, dead letters) and the correlation id carried in NATS
headers, against a real nats-server; and deploy/k8s/prometheus/alerts.yml (well formed, each alert in the
runbook). That the metrics of a running system are real is tests/e2e/test_observability.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import nats
import pytest
import yaml
from fastapi import APIRouter
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from tests.kernel.conftest import Outbox, envelope, eventually
from tsunagu.db import session_scope, utcnow
from tsunagu.events import EventEnvelope
from tsunagu.logging import request_id_var
from tsunagu.messaging import (
    CORRELATION_HEADER,
    ConsumerSpec,
    EventConsumer,
    NatsConnection,
    dead_letters_stored,
)
from tsunagu.metrics import UNMATCHED_ROUTE, MetricsServer
from tsunagu.natsserver import NatsServer, free_port
from tsunagu.outbox import OutboxRelay, add_event
from tsunagu.service import ServiceRuntime, create_service_app
from tsunagu.settings import KernelSettings

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "k8s" / "prometheus" / "alerts.yml"
DEPLOY_README = REPO / "deploy" / "README.md"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def runtime_for(engine: Engine, name: str, **kwargs) -> ServiceRuntime:
    settings = KernelSettings(TSUNAGU_GATEWAY_JWKS='{"keys": []}')
    return ServiceRuntime(name=name, settings=settings, engine=engine, **kwargs)


def test_http_latency_is_recorded_by_route_template_and_status_class(outbox_engine: Engine) -> None:
    service = f"m{uuid.uuid4().hex[:8]}"
    router = APIRouter()

    @router.get("/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    client = TestClient(create_service_app(runtime_for(outbox_engine, service, uses_nats=False), [router], title="t"))
    for thing_id in ("a1", "b2", "c3"):
        assert client.get(f"/things/{thing_id}").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/things/x", params={"q": "a\x00"}).status_code == 422  # refused before routing

    count = "tsunagu_http_request_duration_seconds_count"
    assert value(count, service=service, method="GET", route="/things/{thing_id}", status="2xx") == 3
    # The 404 and the 422 (answered before routing) are counted, under one label.
    assert value(count, service=service, method="GET", route=UNMATCHED_ROUTE, status="4xx") == 2
    # A raw path never becomes a label value: the series count does not grow with the ids clients send.
    routes = {
        sample.labels["route"]
        for metric in REGISTRY.collect()
        if metric.name == "tsunagu_http_request_duration_seconds"
        for sample in metric.samples
        if sample.labels.get("service") == service
    }
    assert not any(thing_id in route for route in routes for thing_id in ("a1", "b2", "c3"))


def test_the_metrics_server_serves_the_registry_and_frees_its_port() -> None:
    port = free_port()
    assert MetricsServer.start(port, "127.0.0.1")
    try:
        assert not MetricsServer.start(free_port(), "127.0.0.1")  # one per process
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        assert "# TYPE tsunagu_http_request_duration_seconds histogram" in response.text
        assert "tsunagu_outbox_pending_events" in response.text
    finally:
        MetricsServer.stop()
    assert MetricsServer.start(port, "127.0.0.1")  # the port was released
    MetricsServer.stop()


async def test_the_sampler_reports_the_outbox_backlog_and_its_age(outbox_engine: Engine) -> None:
    service = f"s{uuid.uuid4().hex[:8]}"
    runtime = runtime_for(outbox_engine, service, outbox_model=Outbox, uses_nats=False)
    await runtime.sample_metrics()
    assert value("tsunagu_outbox_pending_events", service=service) == 0
    assert value("tsunagu_outbox_oldest_pending_age_seconds", service=service) == 0
    assert value("tsunagu_dependency_up", service=service, dependency="database") == 1

    with session_scope(outbox_engine) as session:
        add_event(session, Outbox, envelope(subject_id="old"))
        add_event(session, Outbox, envelope(subject_id="new"))
        session.flush()
        oldest = session.get(Outbox, 1)
        oldest.created_at = utcnow() - timedelta(seconds=90)
    await runtime.sample_metrics()
    assert value("tsunagu_outbox_pending_events", service=service) == 2
    assert 90 <= value("tsunagu_outbox_oldest_pending_age_seconds", service=service) < 120


async def test_the_relay_sends_the_correlation_id_as_a_header_and_counts(
    outbox_engine: Engine, nats_server: NatsServer, connection: NatsConnection
) -> None:
    service = f"r{uuid.uuid4().hex[:8]}"
    event = envelope(subject_id="with-id").model_copy(update={"correlation_id": "req-from-browser"})
    with session_scope(outbox_engine) as session:
        add_event(session, Outbox, event)
        add_event(session, Outbox, envelope(subject_id="without-id"))
    relay = OutboxRelay(outbox_engine, Outbox, connection, service=service)
    assert await relay.publish_pending() == 2
    assert value("tsunagu_outbox_published_total", service=service) == 2

    client = await nats.connect(nats_server.url)
    try:
        sub = await client.jetstream().pull_subscribe("matching.request.submitted", stream="MATCHING")
        messages = await sub.fetch(2, timeout=5)
    finally:
        await client.close()
    headers = {EventEnvelope.from_json(m.data).subject_id: (m.headers or {}) for m in messages}
    assert headers["with-id"][CORRELATION_HEADER] == "req-from-browser"
    assert CORRELATION_HEADER not in headers["without-id"]


async def test_a_consumer_counts_redeliveries_and_dead_letters_and_logs_with_the_header_id(
    connection: NatsConnection,
) -> None:
    service, durable = "consumer-test", f"c{uuid.uuid4().hex[:8]}"
    seen: list[tuple[str, str | None]] = []

    async def handler(event: EventEnvelope) -> None:
        seen.append((event.subject_id, request_id_var.get()))
        if event.subject_id == "flaky" and len(seen) == 1:
            raise RuntimeError("first try fails")

    consumer = EventConsumer(
        connection,
        ConsumerSpec(durable=durable, stream="MATCHING", subjects=["matching.request.submitted"], handler=handler),
        max_deliveries=2,
        ack_wait_seconds=5,
        service=service,
    )
    task = asyncio.create_task(consumer.run())
    js = connection.js
    stored_before = await dead_letters_stored(js)
    try:
        flaky = envelope(subject_id="flaky")  # no correlation id in the envelope: the header carries it
        await js.publish(flaky.type, flaky.to_json(), headers={"Nats-Msg-Id": flaky.id, CORRELATION_HEADER: "hdr-1"})
        await js.publish("matching.request.submitted", b"{poison", headers={"Nats-Msg-Id": f"poison-{durable}"})
        await eventually(lambda: len(seen) == 2, message="the flaky event handled on its second delivery")
        await eventually(
            lambda: value("tsunagu_dead_letters_total", service=service, consumer=durable) == 1,
            message="the poison message dead-lettered",
        )
        await consumer.sample()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen == [("flaky", "hdr-1"), ("flaky", "hdr-1")]
    labels = {"service": service, "consumer": durable}
    assert value("tsunagu_consumer_redeliveries_total", **labels) == 1
    assert value("tsunagu_consumer_events_total", **labels, outcome="retried") == 1
    assert value("tsunagu_consumer_events_total", **labels, outcome="acked") == 1
    assert value("tsunagu_consumer_events_total", **labels, outcome="dead_lettered") == 1
    assert value("tsunagu_consumer_handle_seconds_count", **labels) == 2
    assert value("tsunagu_consumer_pending_events", **labels) == 0
    assert await dead_letters_stored(js) == stored_before + 1


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]


def test_every_alert_is_complete_and_has_a_runbook_entry() -> None:
    rules = alert_rules()
    assert len(rules) >= 10
    readme = DEPLOY_README.read_text(encoding="utf-8")
    for rule in rules:
        name = rule["alert"]
        assert rule["expr"].strip(), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert "/" in rule["annotations"]["summary"], f"{name}: Japanese and English"
        assert rule["annotations"]["runbook_url"] == f"deploy/README.md#{name.lower()}"
        assert f"### {name}" in readme, f"{name} has no runbook entry in deploy/README.md"


@pytest.mark.parametrize("days", [0, 0.5])
def test_the_processed_events_retention_cannot_be_shorter_than_a_day(days: float) -> None:
    with pytest.raises(ValueError, match="TSUNAGU_PROCESSED_EVENTS_RETENTION_DAYS"):
        KernelSettings(TSUNAGU_PROCESSED_EVENTS_RETENTION_DAYS=days)
