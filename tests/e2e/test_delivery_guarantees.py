"""Outbox and consumers through real processes: NATS down, duplicates, redelivery, malformed events."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from launcher.runner import System
from services.matching.models import OutboxRecord, Ranking
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, in_projection, submit_request, wait_ranked, wait_searchable
from tests.factories import unique_name
from tsunagu.db import make_engine
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.messaging import list_dead_letters

pytestmark = pytest.mark.e2e


def rankings_of(system: System, request_id: str, source_event_id: str | None = None) -> int:
    """How many rankings a request has (re-rankings after expert changes included), or only those made from
    one event (a submission is ranked once however often its event is delivered)."""
    engine = make_engine(system.database_url("matching"))
    with Session(engine) as session:
        query = select(func.count()).select_from(Ranking).where(Ranking.request_id == request_id)
        if source_event_id is not None:
            query = query.where(Ranking.source_event_id == source_event_id)
        count = session.exec(query).one()
    engine.dispose()
    return count


def submitted_event(system: System, request_id: str) -> EventEnvelope:
    engine = make_engine(system.database_url("matching"))
    with Session(engine) as session:
        rows = session.exec(select(OutboxRecord).where(OutboxRecord.subject == Subjects.REQUEST_SUBMITTED)).all()
    engine.dispose()
    return next(e for e in (EventEnvelope.from_json(row.payload) for row in rows) if e.subject_id == request_id)


async def _publish(system: System, subject: str, payload: bytes, msg_id: str) -> None:
    client = await nats.connect(system.nats.url)
    try:
        await client.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
    finally:
        await client.close()


async def _scorer_idle(system: System) -> bool:
    """Every event on the scorers' durable delivered and acknowledged (handled, or dead-lettered)."""
    client = await nats.connect(system.nats.url)
    try:
        info = await client.jetstream().consumer_info("MATCHING", "scorer")
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await client.close()


async def _dead_letters(system: System) -> list[dict]:
    client = await nats.connect(system.nats.url)
    try:
        return await list_dead_letters(client.jetstream(), 200)
    finally:
        await client.close()


def test_writes_succeed_while_nats_is_down_and_every_event_arrives_once(
    system: System, api: Api, admin: dict[str, str]
) -> None:
    sme = api.register("sme")
    system.nats.stop()
    try:
        name = unique_name()
        profile = create_expert(api, admin, name=name, prefectures=["46"])  # 鹿児島
        request = submit_request(api, sme, prefecture="46")
    finally:
        system.nats.start()
    # Both outboxes drain once NATS is back: the request is ranked once, the expert reaches search...
    wait_ranked(api, sme, request["id"], timeout=60)
    wait_searchable(api, name, profile["id"], timeout=60)
    submission = submitted_event(system, request["id"])
    assert rankings_of(system, request["id"], source_event_id=submission.id) == 1  # the submission ranked once
    # ...and matching's projection. The first ranking may have run before the expert arrived (the two services'
    # events are independent): the expert's arrival then re-ranks the open request, which must end with them.
    wait_until(lambda: in_projection(system, profile["id"]), timeout=60, message="the expert in matching's projection")

    def ranked_with_the_expert() -> bool:
        ranking = api.http.get(f"/api/v1/requests/{request['id']}/ranking", headers=sme).json()
        return profile["id"] in [entry["expert_id"] for entry in ranking["entries"]]

    wait_until(ranked_with_the_expert, timeout=60, message="the open request re-ranked with the expert")
    later = submit_request(api, sme, prefecture="46")
    ranking = wait_ranked(api, sme, later["id"], timeout=60)
    assert profile["id"] in [entry["expert_id"] for entry in ranking["entries"]]


def test_a_duplicated_event_changes_nothing(system: System, api: Api, admin: dict[str, str]) -> None:
    sme = api.register("sme")
    request = submit_request(api, sme, prefecture="45")
    first = wait_ranked(api, sme, request["id"])
    event = submitted_event(system, request["id"])
    # Publish the same event again under another message id, so the server's dedup cannot help:
    # only the consumer's idempotency (processed event ids) stands between it and a second ranking.
    asyncio.run(_publish(system, event.type, event.to_json(), f"{event.id}-again"))
    asyncio.run(_publish(system, event.type, event.to_json(), event.id))  # and once with the same id
    # A later request being ranked shows the scorers have moved past the duplicates; with two workers,
    # the other may still hold one, so also wait until the scorers' durable has nothing unacknowledged.
    later = submit_request(api, sme, prefecture="45")
    wait_ranked(api, sme, later["id"])
    wait_until(lambda: asyncio.run(_scorer_idle(system)), timeout=30, message="the scorers to ack every event")
    # One ranking from that event, however often it came (an expert change elsewhere in the session may still
    # re-rank the request: that ranking comes from another event).
    assert rankings_of(system, request["id"], source_event_id=event.id) == 1
    assert first["ranking_id"]


def test_an_older_expert_version_does_not_overwrite_a_newer_one(
    system: System, api: Api, admin: dict[str, str]
) -> None:
    name = unique_name()
    profile = create_expert(api, admin, name=name, prefectures=["44"])
    wait_searchable(api, name, profile["id"])
    stale = EventEnvelope(
        type=Subjects.EXPERT_PUBLISHED,
        source="profiles",
        subject_id=profile["id"],
        entity_version=0,
        data={
            "id": profile["id"],
            "kind": "sekisupe",
            "name": "古い名前",
            "active": True,
            "updated_at": "2020-01-01T00:00:00Z",
        },
    )
    asyncio.run(_publish(system, stale.type, stale.to_json(), stale.id))
    newer_name = unique_name()
    other = create_expert(api, admin, name=newer_name, prefectures=["44"])
    wait_searchable(api, newer_name, other["id"])  # the index consumer has moved past the stale event
    hit = wait_searchable(api, name, profile["id"])
    assert hit["name"] == name


def test_malformed_events_are_dead_lettered_and_consumers_keep_going(system: System, api: Api) -> None:
    asyncio.run(_publish(system, Subjects.REQUEST_SUBMITTED, b"\xff not json at all", "garbage-e2e-1"))
    wrong_data = EventEnvelope(
        type=Subjects.REQUEST_SUBMITTED, source="x", subject_id="r", entity_version=1, data={"prefecture": 13}
    )
    asyncio.run(_publish(system, wrong_data.type, wrong_data.to_json(), wrong_data.id))

    def dead_for_scorer() -> list[dict]:
        records = [r for r in asyncio.run(_dead_letters(system)) if r["consumer"] == "scorer"]
        return records if len(records) >= 2 else []

    records = wait_until(dead_for_scorer, timeout=30, message="two dead letters from the scorer")
    errors = " ".join(record["error"] for record in records)
    assert "malformed envelope" in errors and "invalid data" in errors
    assert any(json.loads(json.dumps(record))["original_subject"] == Subjects.REQUEST_SUBMITTED for record in records)

    sme = api.register("sme")
    request = submit_request(api, sme, prefecture="43")
    assert wait_ranked(api, sme, request["id"])["status"] == "ranked"


def test_admins_see_and_replay_dead_letters_through_the_api(system: System, api: Api, admin: dict[str, str]) -> None:
    asyncio.run(_publish(system, Subjects.REQUEST_SUBMITTED, b"{broken", "garbage-e2e-admin"))

    def listed() -> list[dict]:
        response = api.http.get("/api/v1/admin/dead-letters", headers=admin)
        assert response.status_code == 200, response.text
        return [item for item in response.json()["items"] if item["original_payload"] == "{broken"]

    def of_scorer() -> list[dict]:
        return [item for item in listed() if item["consumer"] == "scorer"]

    # Every consumer of the subject (the scorers, search's broker index) dead-letters it on its own.
    item = wait_until(of_scorer, timeout=30, message="the scorer's dead letter in the admin API")[0]
    assert item["error"].startswith("malformed envelope")
    replayed = api.http.post(f"/api/v1/admin/dead-letters/{item['sequence']}/replay", headers=admin)
    assert replayed.status_code == 200 and replayed.json()["replayed_to"] == Subjects.REQUEST_SUBMITTED
    # Still broken, so it comes back as a new dead letter: replay never loses an event.
    wait_until(lambda: len(of_scorer()) >= 2, timeout=30, message="the replayed event dead-lettered again")

    assert api.http.post("/api/v1/admin/dead-letters/999999999/replay", headers=admin).status_code == 404
    broker = api.account("broker", prefectures=["13"])
    assert api.http.get("/api/v1/admin/dead-letters", headers=broker).status_code == 403
    assert api.http.get("/api/v1/admin/dead-letters").status_code == 401
