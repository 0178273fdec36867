"""Observability of the running system (issue 13): every process's /metrics after real traffic, every metric the
alert rules name, and one correlation id followed through the logs of the gateway, the matching service and the
scorer worker that ranked the request.

Real traffic: an SME submits a request (sent with its own X-Request-ID) that the scorers rank, a broker proposes
an expert (a mail goes out through the local SMTP sink), and a poison message is published to the scorers'
subject (dead-lettered). The gauges that need a query are sampled every 5 s, so each check waits on its
condition. Processes and their metrics ports: launcher/runner.py (``System.metrics_ports``); the logs are one
JSON line per record in ``<data_dir>/<process>.log``.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from launcher.runner import System
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, in_projection, wait_ranked
from tests.factories import request_body, unique_name
from tsunagu.events import Subjects

pytestmark = pytest.mark.e2e

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "prometheus" / "alerts.yml"
# Series Prometheus makes itself for every target (no process serves them).
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {"by", "le", "and", "or", "unless", "without", "on", "ignoring", "sum", "max", "min", "rate"}


Samples = dict[str, list[tuple[dict[str, str], float]]]  # sample name -> (labels, value) of every series


def scrape(system: System, key: str) -> Samples:
    response = httpx.get(system.metrics_url(key), timeout=5)
    assert response.status_code == 200, f"{key}: {response.status_code}"
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def scrape_all(system: System) -> dict[str, Samples]:
    return {key: scrape(system, key) for key in system.metrics_ports}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(value for found, value in samples.get(name, []) if all(found.get(k) == v for k, v in labels.items()))


def scorers(system: System) -> list[str]:
    return [key for key in system.metrics_ports if key.startswith("scorer-")]


def across(system: System, keys: list[str], name: str, **labels: str) -> float:
    return sum(total(scrape(system, key), name, **labels) for key in keys)


def log_records(path: Path) -> Iterator[dict]:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def alert_metric_names() -> set[str]:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]
    names: set[str] = set()
    for rule in rules:
        expr = re.sub(r"\[[^\]]*\]", "", rule["expr"])  # range selectors
        expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
        expr = re.sub(r"\([^()]*\)\s*(?=\()", "", expr)  # the label lists of by (...) / without (...)
        for word in re.findall(r"\b[a-z_][a-z0-9_]*\b", expr):
            if word in PROMQL_WORDS or word.startswith("histogram_") or word in {"increase", "count", "avg"}:
                continue
            names.add(word)
    return names


async def _publish_poison(system: System, msg_id: str) -> None:
    client = await nats.connect(system.nats.url)
    try:
        await client.jetstream().publish(Subjects.REQUEST_SUBMITTED, b"{obs-poison", headers={"Nats-Msg-Id": msg_id})
    finally:
        await client.close()


@pytest.fixture(scope="module")
def traffic(system: System, api: Api) -> dict[str, str]:
    """One submission ranked, one proposal mailed, one poison message dead-lettered; returns the ids used."""
    assert set(system.metrics_ports) >= {"gateway", "profiles", "matching", "search", "scorer-1"}
    before = scrape_all(system)
    mails_before = total(before["gateway"], "tsunagu_mails_sent_total")
    dead_before = sum(total(before[key], "tsunagu_dead_letters_total", consumer="scorer") for key in scorers(system))

    expert = api.register("expert", name="観測 専門家")
    skill = f"観測{unique_name()}"
    profile = create_expert(api, expert, name=unique_name(), prefectures=["47"], skills=[skill])
    wait_until(lambda: in_projection(system, profile["id"]), timeout=60, message="the expert in matching")
    broker = api.account("broker", prefectures=["47"])
    sme = api.register("sme")

    correlation_id = f"obs-{uuid.uuid4().hex}"
    submitted = api.http.post(
        "/api/v1/requests",
        headers={**sme, "X-Request-ID": correlation_id},
        json=request_body(prefecture="47", skills=[skill]),
    )
    assert submitted.status_code == 201, submitted.text
    assert submitted.headers["x-request-id"] == correlation_id
    request_id = submitted.json()["id"]
    ranking = wait_ranked(api, sme, request_id)
    assert ranking["entries"][0]["expert_id"] == profile["id"]

    proposed = api.http.post(
        f"/api/v1/requests/{request_id}/proposals",
        headers=broker,
        json={"expert_id": profile["id"], "message": "観測のための提案です。ご検討ください。"},
    )
    assert proposed.status_code == 201, proposed.text
    asyncio.run(_publish_poison(system, f"obs-poison-{uuid.uuid4().hex}"))

    wait_until(
        lambda: total(scrape(system, "gateway"), "tsunagu_mails_sent_total") > mails_before,
        timeout=60,
        message="the proposal's mail counted as sent",
    )
    wait_until(
        lambda: across(system, scorers(system), "tsunagu_dead_letters_total", consumer="scorer") > dead_before,
        timeout=60,
        message="the poison message counted as a dead letter",
    )
    return {"correlation_id": correlation_id, "request_id": request_id}


def test_every_process_serves_real_metrics_after_real_traffic(system: System, traffic: dict[str, str]) -> None:
    request_id = traffic["request_id"]
    scorer_keys = scorers(system)

    assert across(system, scorer_keys, "tsunagu_scorer_rank_seconds_count") > 0
    assert across(system, scorer_keys, "tsunagu_scorer_submit_to_ranked_seconds_count") > 0
    assert across(system, scorer_keys, "tsunagu_scorer_submit_to_ranked_seconds_sum") > 0

    http = "tsunagu_http_request_duration_seconds_count"
    gateway = scrape(system, "gateway")
    assert total(gateway, http, service="gateway", method="POST", route="/api/v1/requests", status="2xx") >= 1
    matching = scrape(system, "matching")
    assert total(matching, http, service="matching", method="POST", route="/requests", status="2xx") >= 1
    assert total(matching, http, service="matching", method="GET", route="/requests/{request_id}/ranking") >= 1
    for key in ("gateway", "profiles", "matching", "search"):
        routes = {labels["route"] for labels, _ in scrape(system, key).get(http, [])}
        assert routes, f"{key} recorded no request"
        assert not any(request_id in route for route in routes), f"{key} labels a raw path: {routes}"

    def sampled() -> dict[str, Samples] | None:
        scraped = scrape_all(system)
        ready = all(
            "tsunagu_dependency_up" in samples and "tsunagu_consumer_pending_events" in samples
            for key, samples in scraped.items()
            if key != "profiles"  # profiles consumes nothing: no lag to report
        )
        return scraped if ready and "tsunagu_outbox_pending_events" in scraped["matching"] else None

    scraped = wait_until(sampled, timeout=30, message="every process sampled its gauges")
    for key, samples in scraped.items():
        deps = {labels["dependency"]: value for labels, value in samples["tsunagu_dependency_up"]}
        assert deps.get("database") == 1 and deps.get("nats") == 1, f"{key}: {deps}"
    for key in ("profiles", "matching", *scorer_keys):
        assert "tsunagu_outbox_pending_events" in scraped[key], key
        ages = [value for _, value in scraped[key]["tsunagu_outbox_oldest_pending_age_seconds"]]
        assert ages and all(age >= 0 for age in ages), key
    consumers = {
        labels["consumer"] for key in scraped for labels, _ in scraped[key].get("tsunagu_consumer_pending_events", [])
    }
    assert {"scorer", "rescorer", "matching-projections", "gateway-notifications"} <= consumers
    assert any(name.startswith("search") for name in consumers)
    for key in scorer_keys:
        redeliveries = {labels["consumer"] for labels, _ in scraped[key]["tsunagu_consumer_redeliveries_total"]}
        assert "scorer" in redeliveries, key
    acked = sum(
        total(scraped[key], "tsunagu_consumer_events_total", consumer="scorer", outcome="acked") for key in scorer_keys
    )
    assert acked >= 1
    assert max(total(scraped[key], "tsunagu_dead_letters_stored") for key in scraped if key != "profiles") >= 1
    assert total(scraped["gateway"], "tsunagu_mails_sent_total") >= 1
    assert "tsunagu_mails_failed_total" in scraped["gateway"]


def test_every_metric_the_alerts_name_is_served(system: System, traffic: dict[str, str]) -> None:
    wanted = alert_metric_names()
    assert "tsunagu_outbox_oldest_pending_age_seconds" in wanted and "tsunagu_mails_given_up_total" in wanted
    served: set[str] = set()

    def all_served() -> bool:
        for samples in scrape_all(system).values():
            served.update(samples)
        return wanted - PROMETHEUS_OWN <= served

    wait_until(all_served, timeout=30, message=f"metrics the alerts name: {sorted(wanted - PROMETHEUS_OWN - served)}")


def test_one_correlation_id_is_in_the_logs_of_gateway_service_and_scorer(
    system: System, traffic: dict[str, str]
) -> None:
    correlation_id = traffic["correlation_id"]
    data_dir = system.config.data_dir

    def records(key: str) -> list[dict]:
        return [record for record in log_records(data_dir / f"{key}.log") if record.get("request_id") == correlation_id]

    def ranked_in(by_process: dict[str, list[dict]]) -> list[dict]:
        return [r for key in scorers(system) for r in by_process[key] if r.get("message") == "request ranked"]

    def found() -> dict[str, list[dict]] | None:
        by_process = {key: records(key) for key in ("gateway", "matching", *scorers(system))}
        return by_process if by_process["gateway"] and by_process["matching"] and ranked_in(by_process) else None

    # The scorer's own line is waited for too: the request's ranking may be readable a moment before the scorer
    # writes its log line. (A re-ranking never makes a request's first ranking: repository.requests_due_for_rerank.)
    by_process = wait_until(
        found, timeout=60, message="the request id in the logs of the gateway, matching and the scorer that ranked it"
    )
    assert any(r.get("path") == "/api/v1/requests" and r.get("status") == 201 for r in by_process["gateway"])
    assert any(r.get("path") == "/requests" and r.get("status") == 201 for r in by_process["matching"])
    ranked = ranked_in(by_process)
    assert ranked[0]["request_id_ranked"] == traffic["request_id"] and ranked[0]["event_id"]
    for key, lines in by_process.items():
        assert all(r.get("service") for r in lines), key
