"""Against a real nats-server (JetStream): the outbox relay publishes both expert events, the published one
without private fields, and a status change with its reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from services.profiles.app import create_app
from services.profiles.models import Expert
from services.profiles.settings import ProfilesSettings
from tests.profiles.conftest import Auth, create_listed, expert_body
from tsunagu.auth import Role
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.natsserver import NatsServer, free_port

PHONE = "090-0000-5678"
EMAIL = "hidden@example.jp"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port(), name="profiles-test")
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.start()
    yield server
    server.stop()


async def _read_events(
    url: str, expert_id: str, subjects: set[str], timeout: float
) -> dict[str, list[tuple[EventEnvelope, str]]]:
    """All events of one expert on the PROFILES stream until each wanted subject was seen (with its msg id)."""
    client = await nats.connect(url)
    found: dict[str, list[tuple[EventEnvelope, str]]] = {}
    try:
        subscription = await client.jetstream().subscribe("profiles.>", ordered_consumer=True)
        deadline = time.monotonic() + timeout
        while not subjects <= set(found) and time.monotonic() < deadline:
            try:
                message = await subscription.next_msg(timeout=1)
            except nats.errors.TimeoutError:
                continue
            envelope = EventEnvelope.from_json(message.data)
            if envelope.subject_id == expert_id:
                found.setdefault(message.subject, []).append((envelope, (message.headers or {}).get("Nats-Msg-Id", "")))
    finally:
        await client.close()
    return found


def read_events(
    url: str, expert_id: str, subjects: set[str], timeout: float = 20.0
) -> dict[str, list[tuple[EventEnvelope, str]]]:
    found = asyncio.run(_read_events(url, expert_id, subjects, timeout))
    assert subjects <= set(found), f"missing on JetStream: {subjects - set(found)}"
    return found


def test_events_reach_jetstream_with_public_fields_only_and_status_reasons(
    nats_server: NatsServer, settings: ProfilesSettings, auth: Auth
) -> None:
    settings = settings.model_copy(update={"nats_url": nats_server.url})
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service never connected to NATS"
            time.sleep(0.1)
        owner = auth(Role.EXPERT, "nats-expert")
        body = expert_body(
            contact_phone=PHONE, contact_email=EMAIL, affiliation="非公開の所属", visibility={"affiliation": "private"}
        )
        created = create_listed(client, auth, body, "nats-expert")
        assert created.status_code == 201, created.text
        expert_id = created.json()["id"]

        events = read_events(nats_server.url, expert_id, {Subjects.EXPERT_UPSERTED, Subjects.EXPERT_PUBLISHED})
        ((features, features_msg_id),) = events[Subjects.EXPERT_UPSERTED]
        ((published, published_msg_id),) = events[Subjects.EXPERT_PUBLISHED]
        assert features_msg_id == features.id and published_msg_id == published.id  # JetStream de-duplicates on it
        assert features.entity_version == published.entity_version == 1
        assert features.data["topics"] == {"ransomware": 3}
        published_text = json.dumps(published.model_dump(mode="json"), ensure_ascii=False)
        for private in (PHONE, EMAIL, "非公開の所属"):
            assert private not in published_text
        assert PHONE not in json.dumps(features.data) and EMAIL not in json.dumps(features.data)
        assert published.data["name"] == "山田 太郎" and published.data["registration_number"] == "012345"

        # The entry goes stale; the job deactivates it and says why, then one confirmation brings it back.
        with Session(client.app.state.runtime.engine) as session:  # type: ignore[attr-defined]
            expert = session.get(Expert, expert_id)
            assert expert is not None
            expert.last_confirmed_at = datetime.now(UTC) - timedelta(days=400)
            session.add(expert)
            session.commit()
        assert client.post("/admin/experts/freshness/run", headers=auth(Role.ADMIN)).json()["deactivated_total"] == 1
        assert client.post(f"/experts/{expert_id}/confirm-active", headers=owner).json()["active"] is True

        events = read_events(nats_server.url, expert_id, {Subjects.EXPERT_DEACTIVATED, Subjects.EXPERT_REACTIVATED})
        ((deactivated, _),) = events[Subjects.EXPERT_DEACTIVATED]
        ((reactivated, _),) = events[Subjects.EXPERT_REACTIVATED]
        assert deactivated.data["reason_code"] == "confirmation_stale" and deactivated.entity_version == 2
        assert "確認" in deactivated.data["reason_ja"] and "confirmed" in deactivated.data["reason_en"].lower()
        assert reactivated.data["reason_code"] == "confirmed" and reactivated.entity_version == 3
        versions = [envelope.entity_version for envelope, _ in events[Subjects.EXPERT_PUBLISHED]]
        assert versions == [1, 2, 3]
        assert [envelope.data["active"] for envelope, _ in events[Subjects.EXPERT_PUBLISHED]] == [True, False, True]
        relay = client.app.state.runtime.relay  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while relay.pending_count():  # the relay marks rows sent right after the publish acks
            assert time.monotonic() < deadline, "outbox rows left unpublished"
            time.sleep(0.1)
