"""Re-ranking after an expert changes: which open requests are affected (scoring/rerank.py), the marks and
the re-ranking that follows (consumers.py), and the events that start it (a profile change through the
projection, an open-load change through the brokering rules)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.matching import repository
from services.matching.consumers import (
    RERANK_YIELD_SECONDS,
    FirstRankings,
    RerankLoop,
    mark_affected,
    rank_submitted_request,
    rerank_consumers,
    rerank_due,
)
from services.matching.models import Ranking, SmeRequest
from services.matching.scoring.features import FeatureStore
from tests.factories import request_body
from tests.matching.conftest import Auth, expert_event, organization_event, outbox, project, writing_during_refresh
from tsunagu.auth import Role
from tsunagu.db import session_scope
from tsunagu.events import EventEnvelope, Subjects

ORG = "org-okinawa"


def submit(client: TestClient, auth: Auth, engine: Engine, store: FeatureStore, **overrides: Any) -> str:
    """Submit a request and rank it, as the scorer would; returns its id."""
    response = client.post("/requests", json=request_body(**overrides), headers=auth(Role.SME, "sme-1"))
    assert response.status_code == 201, response.text
    event = outbox(engine, Subjects.REQUEST_SUBMITTED)[-1]
    with session_scope(engine) as session:
        assert rank_submitted_request(session, store, event) is not None
    return response.json()["id"]


def changes(engine: Engine, expert_id: str | None = None) -> list[EventEnvelope]:
    return [e for e in outbox(engine, Subjects.EXPERT_RANKING_CHANGED) if expert_id in (None, e.data["expert_id"])]


def latest(engine: Engine, request_id: str) -> Ranking:
    with Session(engine) as session:
        rankings = session.exec(
            select(Ranking).where(Ranking.request_id == request_id).order_by(col(Ranking.computed_at))
        ).all()
        return rankings[-1]


def rankings_of(engine: Engine, request_id: str) -> list[Ranking]:
    with Session(engine) as session:
        return list(session.exec(select(Ranking).where(Ranking.request_id == request_id)).all())


def ranked_ids(engine: Engine, request_id: str) -> list[str]:
    return [entry["expert_id"] for entry in latest(engine, request_id).entries]


def marked(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return {r.id for r in repository.open_requests(session) if r.rerank_due_at is not None}


@pytest.fixture
def store(engine: Engine) -> FeatureStore:
    return FeatureStore(engine)


def test_a_new_strength_reranks_the_requests_it_may_enter_and_only_those(
    client: TestClient, auth: Auth, engine: Engine, store: FeatureStore
) -> None:
    project(engine, expert_event(expert_id="okinawa-1", topics={"ransomware": 1}))
    okinawa = submit(client, auth, engine, store, prefecture="47", delivery="onsite", topics=["ransomware"])
    hokkaido = submit(client, auth, engine, store, prefecture="01", delivery="onsite", topics=["ransomware"])
    before = latest(engine, okinawa)
    assert ranked_ids(engine, okinawa) == ["okinawa-1"] and ranked_ids(engine, hokkaido) == []

    # A second Okinawa expert gains the strength: the Okinawa request may change, Hokkaido (on site) cannot.
    project(engine, expert_event(expert_id="okinawa-2", topics={"ransomware": 3}))
    [change] = changes(engine, "okinawa-2")
    assert change.data["cause"] == "profile"
    assert mark_affected(engine, store, [change]) == 1
    assert marked(engine) == {okinawa}
    assert mark_affected(engine, store, [change]) == 0  # redelivered: claimed once

    assert rerank_due(engine, store) == 1
    assert ranked_ids(engine, okinawa) == ["okinawa-2", "okinawa-1"]
    after = latest(engine, okinawa)
    assert after.computed_at >= before.computed_at and after.id != before.id  # a ranking shows when it was made
    assert marked(engine) == set() and rerank_due(engine, store) == 0
    with Session(engine) as session:
        assert repository.get_request(session, okinawa).status == "ranked"
    [ranked_event] = [e for e in outbox(engine, Subjects.REQUEST_RANKED) if e.data["ranking_id"] == after.id]
    assert ranked_event.data["top_expert_ids"] == ["okinawa-2", "okinawa-1"]


def test_an_expert_who_leaves_the_list_leaves_the_rankings_they_were_in(
    client: TestClient, auth: Auth, engine: Engine, store: FeatureStore
) -> None:
    project(engine, expert_event(expert_id="a"), expert_event(expert_id="b"))
    request_id = submit(client, auth, engine, store)
    assert set(ranked_ids(engine, request_id)) == {"a", "b"}

    project(engine, expert_event(version=2, expert_id="a", active=False))
    assert mark_affected(engine, store, changes(engine, "a")) == 1
    assert rerank_due(engine, store) == 1
    assert ranked_ids(engine, request_id) == ["b"]


def test_an_unchanged_profile_event_starts_nothing(engine: Engine) -> None:
    project(engine, expert_event(expert_id="same", display_name="同じ"))
    project(engine, expert_event(version=2, expert_id="same", display_name="同じ"))
    assert len(changes(engine, "same")) == 1  # the first projection only


def test_a_full_expert_leaves_and_a_freed_one_returns(
    client: TestClient, auth: Auth, engine: Engine, store: FeatureStore
) -> None:
    """Capacity is real: accepting a proposal holds a place (load), and the other open requests re-rank."""
    project(
        engine,
        organization_event(organization_id=ORG, member_user_ids=["sme-1"]),
        expert_event(expert_id="solo", owner_user_id="expert-solo", capacity=1),
        expert_event(expert_id="other", topics={"ransomware": 1}),
    )
    first = submit(client, auth, engine, store, organization_id=ORG)
    second = submit(client, auth, engine, store)
    assert ranked_ids(engine, second)[0] == "solo"

    broker = auth(Role.BROKER, "broker-1", prefectures=["47"])
    proposal = client.post(f"/requests/{first}/proposals", json={"expert_id": "solo", "message": "?"}, headers=broker)
    assert proposal.status_code == 201, proposal.text
    assert changes(engine, "solo") == changes(engine, "solo")[:1]  # proposed: no place taken yet
    accepted = client.post(f"/proposals/{proposal.json()['id']}/accept", headers=auth(Role.EXPERT, "expert-solo"))
    assert accepted.status_code == 200, accepted.text
    load_change = changes(engine, "solo")[-1]
    assert load_change.data["cause"] == "load"

    # Both requests ranked "solo" (the first waits for the SME's confirmation, still open): both re-rank.
    assert mark_affected(engine, store, [load_change]) == 2 and marked(engine) == {first, second}
    assert rerank_due(engine, store) == 2
    assert ranked_ids(engine, second) == ["other"]  # full: out of the rankings

    withdrawn = client.post(
        f"/proposals/{proposal.json()['id']}/withdraw", json={"reason": "日程が合わず"}, headers=broker
    )
    assert withdrawn.status_code == 200, withdrawn.text
    freed = changes(engine, "solo")[-1]
    assert freed.id != load_change.id and freed.data["cause"] == "load"
    assert mark_affected(engine, store, [freed]) >= 1
    rerank_due(engine, store)
    assert ranked_ids(engine, second)[0] == "solo"  # freed: back in


def test_a_reranking_never_reopens_a_cancelled_request(
    client: TestClient, auth: Auth, engine: Engine, store: FeatureStore
) -> None:
    project(engine, expert_event(expert_id="a"))
    request_id = submit(client, auth, engine, store)
    project(engine, expert_event(expert_id="b"))
    assert mark_affected(engine, store, changes(engine, "b")) == 1
    cancelled = client.post(
        f"/requests/{request_id}/cancel", json={"reason": "自社で対応"}, headers=auth(Role.SME, "sme-1")
    )
    assert cancelled.status_code == 200, cancelled.text
    assert rerank_due(engine, store) == 0
    with Session(engine) as session:
        assert repository.get_request(session, request_id).status == "cancelled"
    assert ranked_ids(engine, request_id) == ["a"]


def test_a_batch_of_rerankings_clears_only_the_marks_it_answered(
    client: TestClient, auth: Auth, engine: Engine, store: FeatureStore, database_url: str
) -> None:
    """Re-rankings are written together; a request marked again while its batch was ranked keeps the newer
    mark (and is re-ranked once more), one edited meanwhile gets no ranking of its older version. Ranked again
    is no new version of a request. SQLite only: on PostgreSQL the batch's rows are locked from its read
    (``requests_due_for_rerank``) to its commit, so the mark and the edit would wait for it."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks the re-ranked rows: no write can come between the read and the write")
    project(engine, expert_event(expert_id="a"))
    quiet, marked_again, edited = (submit(client, auth, engine, store) for _ in range(3))
    project(engine, expert_event(expert_id="b"))
    assert mark_affected(engine, store, changes(engine, "b")) == 3
    later = datetime.now(UTC) + timedelta(seconds=5)

    def mark_again_and_edit() -> None:
        with session_scope(engine) as session:
            session.connection().execute(
                update(SmeRequest).where(col(SmeRequest.id) == marked_again).values(rerank_due_at=later)
            )
        response = client.patch(f"/requests/{edited}", json={"title": "編集後"}, headers=auth(Role.SME, "sme-1"))
        assert response.status_code == 200, response.text

    before = {request_id: len(rankings_of(engine, request_id)) for request_id in (quiet, marked_again, edited)}
    with writing_during_refresh(store, mark_again_and_edit):
        assert rerank_due(engine, store) == 2
    assert marked(engine) == {marked_again, edited}  # the newer mark stays; the edit's mark waits for its version
    assert len(rankings_of(engine, quiet)) == before[quiet] + 1 and set(ranked_ids(engine, quiet)) == {"a", "b"}
    assert len(rankings_of(engine, marked_again)) == before[marked_again] + 1
    assert len(rankings_of(engine, edited)) == before[edited]
    with Session(engine) as session:
        versions = {r.id: (r.status, r.entity_version) for r in repository.open_requests(session)}
    assert versions[quiet] == versions[marked_again] == ("ranked", 2)
    assert versions[edited][1] == 3
    ranked = {e.subject_id: e.entity_version for e in outbox(engine, Subjects.REQUEST_RANKED)[-2:]}
    assert ranked == {quiet: 2, marked_again: 2}
    assert rerank_due(engine, store) == 1  # the newer mark; the edited request is submitted again and waits
    assert marked(engine) == {edited}
    [resubmitted] = [e for e in outbox(engine, Subjects.REQUEST_SUBMITTED) if e.subject_id == edited][-1:]
    with session_scope(engine) as session:
        assert rank_submitted_request(session, store, resubmitted) is not None  # its edit's own ranking
    assert rerank_due(engine, store) == 1  # then its mark, answered as it is now
    assert marked(engine) == set()


def test_the_rerank_consumer_takes_a_batch(engine: Engine, store: FeatureStore) -> None:
    [spec] = rerank_consumers(engine, store, lambda: None)
    assert spec.stream == "MATCHING" and spec.subjects == [Subjects.EXPERT_RANKING_CHANGED]
    assert spec.batch_handler is not None and spec.fetch_batch >= 100


def test_first_rankings_count_as_coming_in_for_a_second_after_each() -> None:
    now = [100.0]
    first = FirstRankings(clock=lambda: now[0])
    assert not first.active()  # a worker that has ranked nothing re-ranks at full speed
    first.touch()
    assert first.active()
    now[0] += RERANK_YIELD_SECONDS
    assert not first.active()


def test_re_ranking_gives_way_to_first_rankings_and_catches_up_after(
    client: TestClient, auth: Auth, engine: Engine, store: FeatureStore
) -> None:
    """A burst of expert changes must not keep new requests waiting (tests/fault/test_nats_outage.py): while
    the worker ranks submitted requests, it re-ranks one request per step; when they stop, whole batches."""
    project(engine, expert_event(expert_id="a"), expert_event(expert_id="b"))
    requests = {submit(client, auth, engine, store) for _ in range(3)}
    project(engine, expert_event(version=2, expert_id="a", active=False))
    assert mark_affected(engine, store, changes(engine, "a")) == 3

    now = [0.0]
    first = FirstRankings(clock=lambda: now[0])
    written: list[int] = []
    loop = RerankLoop(engine, store, lambda: written.append(1), first)
    first.touch()  # a submitted request was just ranked
    assert loop.giving_way()
    assert asyncio.run(loop.step()) == 1 and len(marked(engine)) == 2
    now[0] += RERANK_YIELD_SECONDS  # no submission since
    assert not loop.giving_way()
    assert asyncio.run(loop.step()) == 2 and marked(engine) == set()
    assert written == [1, 1]  # the relay woken after each
    assert all(ranked_ids(engine, request_id) == ["b"] for request_id in requests)


def test_a_request_not_yet_ranked_keeps_its_mark_for_its_own_first_ranking(
    client: TestClient, auth: Auth, engine: Engine, store: FeatureStore
) -> None:
    """Re-ranking renews rankings; it never makes a request's first one. A submitted request marked by an expert
    change waits for its submission event's ranking (which would otherwise find a newer version and give way,
    its event ending in no ranking), and the mark is answered after it."""
    project(engine, expert_event(expert_id="okinawa-1", topics={"ransomware": 1}))
    response = client.post(
        "/requests", json=request_body(prefecture="47", topics=["ransomware"]), headers=auth(Role.SME, "sme-1")
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["id"]
    with session_scope(engine) as session:
        repository.mark_rerank_due(session, [request_id], datetime.now(UTC))
    assert rerank_due(engine, store) == 0 and rankings_of(engine, request_id) == []
    assert marked(engine) == {request_id}  # kept

    submitted = outbox(engine, Subjects.REQUEST_SUBMITTED)[-1]
    with session_scope(engine) as session:
        first = rank_submitted_request(session, store, submitted)
    assert first is not None and first.source_event_id == submitted.id  # the submission's own ranking
    assert rerank_due(engine, store) == 1 and marked(engine) == set()  # then the mark is answered
    assert len(rankings_of(engine, request_id)) == 2
