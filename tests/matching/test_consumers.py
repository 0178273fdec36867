"""The event handlers: the projections (idempotent by event id, newer versions only, organisation members
replaced, a batch all or nothing) and the scorer's (ranks once, the ranked event in the outbox; a fetched
batch of submissions in one transaction, each ranked once, never reopening a closed request, all or nothing,
and holding no write lock while it ranks)."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.matching import repository
from services.matching.consumers import (
    SCORER_CONSUMER,
    projection_consumers,
    rank_submitted_request,
    rank_submitted_requests,
    scorer_consumers,
)
from services.matching.models import ExpertFeature, OrganizationMember, ProcessedEvent, Ranking
from services.matching.scoring.features import FeatureStore
from tests.factories import request_body
from tests.matching.conftest import (
    Auth,
    envelope,
    expert_event,
    organization_event,
    outbox,
    project,
    writing_during_refresh,
)
from tsunagu.auth import Role
from tsunagu.contracts import PermanentEventError
from tsunagu.db import session_scope
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.outbox import claim_event


def expert(engine: Engine, expert_id: str) -> ExpertFeature | None:
    with Session(engine) as session:
        return repository.get_expert_feature(session, expert_id)


def test_an_expert_event_is_projected_once_and_only_if_newer(engine: Engine) -> None:
    first = expert_event(version=2, expert_id="e-1", capacity=2)
    project(engine, first)
    projected = expert(engine, "e-1")
    assert projected is not None and projected.entity_version == 2 and projected.capacity == 2
    seq = projected.change_seq

    project(engine, expert_event(version=1, expert_id="e-1", capacity=9))  # older: ignored
    project(engine, EventEnvelope(**{**first.model_dump(), "data": {**first.data, "capacity": 7}}))  # same id
    unchanged = expert(engine, "e-1")
    assert unchanged.entity_version == 2 and unchanged.capacity == 2 and unchanged.change_seq == seq

    project(engine, expert_event(version=3, expert_id="e-1", capacity=0, active=False))
    newer = expert(engine, "e-1")
    assert newer.entity_version == 3 and newer.capacity == 0 and not newer.active
    assert newer.change_seq > seq  # so the scorers reload it


def test_an_organisation_event_replaces_its_members(engine: Engine) -> None:
    project(engine, organization_event(organization_id="o-1", member_user_ids=["a", "b", "a"]))
    project(engine, organization_event(version=2, organization_id="o-1", name="新社名", member_user_ids=["b", "c"]))
    project(engine, organization_event(version=1, organization_id="o-1", member_user_ids=["z"]))  # older: ignored
    with Session(engine) as session:
        organization = repository.get_organization(session, "o-1")
        members = session.exec(select(OrganizationMember.user_id).where(OrganizationMember.organization_id == "o-1"))
        assert organization.name == "新社名" and organization.entity_version == 2
        assert sorted(members) == ["b", "c"]


def test_a_batch_is_applied_all_or_nothing(engine: Engine) -> None:
    good = expert_event(expert_id="e-1")
    foreign = envelope(Subjects.EXPERT_PUBLISHED, {}, subject_id="e-2")
    with pytest.raises(PermanentEventError):
        project(engine, good, foreign)
    assert expert(engine, "e-1") is None
    project(engine, good)  # alone, the good event still applies (its id was not claimed)
    assert expert(engine, "e-1") is not None


def test_the_consumers_subscribe_to_what_they_handle(engine: Engine) -> None:
    [projections] = projection_consumers(engine, lambda: None)
    assert projections.stream == "PROFILES" and projections.batch_handler is not None
    assert set(projections.subjects) == {Subjects.EXPERT_UPSERTED, Subjects.ORGANIZATION_UPSERTED}
    [scorer] = scorer_consumers(engine, FeatureStore(engine), lambda: None)
    assert scorer.stream == "MATCHING" and scorer.subjects == [Subjects.REQUEST_SUBMITTED]


def submitted(client: TestClient, auth: Auth, engine: Engine, **overrides) -> EventEnvelope:
    response = client.post("/requests", json=request_body(**overrides), headers=auth(Role.SME, "sme-1"))
    assert response.status_code == 201, response.text
    return outbox(engine, Subjects.REQUEST_SUBMITTED)[-1]


def rank_once(engine: Engine, store: FeatureStore, event: EventEnvelope) -> Ranking | None:
    with session_scope(engine) as session:
        return rank_submitted_request(session, store, event)


def test_the_scorer_ranks_a_request_once_and_announces_it(client: TestClient, auth: Auth, engine: Engine) -> None:
    project(engine, expert_event(expert_id="okinawa"), expert_event(expert_id="tokyo", prefectures=["13"]))
    event = submitted(client, auth, engine, prefecture="47")
    store = FeatureStore(engine)

    ranking = rank_once(engine, store, event)
    assert ranking is not None and ranking.entries[0]["expert_id"] == "okinawa"
    assert rank_once(engine, store, event) is None  # redelivered: nothing more

    with Session(engine) as session:
        assert len(session.exec(select(Ranking)).all()) == 1
        request = repository.get_request(session, event.subject_id)
        assert request.status == "ranked" and request.entity_version == 2
    [ranked] = outbox(engine, Subjects.REQUEST_RANKED)
    assert ranked.subject_id == event.subject_id and ranked.entity_version == 2
    assert ranked.data["ranking_id"] == ranking.id and ranked.data["top_expert_ids"][0] == "okinawa"

    shown = client.get(f"/requests/{event.subject_id}/ranking", headers=auth(Role.SME, "sme-1")).json()
    assert shown["status"] == "ranked" and shown["entries"][0]["expert_id"] == "okinawa"


def test_a_request_skill_matches_a_profile_skill_written_differently(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """Profiles stores tags normalised ("cloud security"); a request's "Cloud  Security" (two spaces) is the
    same tag, so it counts for the expert."""
    project(engine, expert_event(expert_id="cloud", skills=["cloud security"]), expert_event(expert_id="other"))
    event = submitted(client, auth, engine, skills=["Cloud  Security"])
    ranking = rank_once(engine, FeatureStore(engine), event)
    top = ranking.entries[0]
    assert top["expert_id"] == "cloud" and top["contributions"]["skill"] > 0
    assert "求めるスキル1件が一致" in top["reason_ja"]


def test_a_request_industry_matches_a_profile_industry_written_differently(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """The industry is a tag too: a request's "Food  Manufacturing" is a profile's "food manufacturing"."""
    project(engine, expert_event(expert_id="food", industries=["food manufacturing"]), expert_event(expert_id="other"))
    event = submitted(client, auth, engine, industry="Food  Manufacturing")
    assert event.data["industry"] == "food manufacturing"
    ranking = rank_once(engine, FeatureStore(engine), event)
    top = ranking.entries[0]
    assert top["expert_id"] == "food" and top["contributions"]["industry"] > 0


def test_a_submitted_event_for_an_unknown_request_is_dead_lettered(engine: Engine) -> None:
    event = envelope(
        Subjects.REQUEST_SUBMITTED,
        {"request_id": "gone", "prefecture": "47", "delivery": "either", "topics": ["ransomware"]},
        subject_id="gone",
    )
    with pytest.raises(PermanentEventError):
        rank_once(engine, FeatureStore(engine), event)


# --- a batch of submissions ranked in one transaction (consumers.rank_submitted_requests) ------------------


def submit_as(client: TestClient, auth: Auth, engine: Engine, request_id: str, **overrides) -> EventEnvelope:
    """A submission made under the HTTP request id ``request_id`` (its events' correlation id)."""
    headers = {**auth(Role.SME, "sme-1"), "x-request-id": request_id}
    response = client.post("/requests", json=request_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return outbox(engine, Subjects.REQUEST_SUBMITTED)[-1]


def rank_batch(engine: Engine, store: FeatureStore, events: list[EventEnvelope]) -> list[Ranking]:
    with session_scope(engine) as session:
        return [ranking for _, ranking in rank_submitted_requests(session, store, events)]


def rankings(engine: Engine) -> list[Ranking]:
    with Session(engine) as session:
        return list(session.exec(select(Ranking)).all())


def test_a_batch_ranks_each_request_once_each_event_answered_with_its_correlation_id(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    project(engine, expert_event(expert_id="okinawa"), expert_event(expert_id="tokyo", prefectures=["13"]))
    events = [submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(3)]
    store = FeatureStore(engine)
    refreshes = []
    refresh = store.refresh
    store.refresh = lambda: refreshes.append(1) or refresh()  # type: ignore[method-assign]

    ranked = rank_batch(engine, store, events)
    assert [ranking.request_id for ranking in ranked] == [event.subject_id for event in events]
    assert len(refreshes) == 1  # one refresh for the whole batch
    assert rank_batch(engine, store, events) == []  # the batch redelivered: nothing more
    assert len(rankings(engine)) == 3
    announced = {event.subject_id: event for event in outbox(engine, Subjects.REQUEST_RANKED)}
    assert {event.subject_id for event in events} == set(announced)
    for event in events:  # each ranked event carries the id of the submission it answers
        assert announced[event.subject_id].correlation_id == event.correlation_id
    assert {event.correlation_id for event in events} == {"req-0", "req-1", "req-2"}
    with Session(engine) as session:
        assert all(repository.get_request(session, e.subject_id).status == "ranked" for e in events)


def test_a_duplicate_in_a_batch_is_ignored(client: TestClient, auth: Auth, engine: Engine) -> None:
    project(engine, expert_event(expert_id="okinawa"))
    first, second = (submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(2))
    ranked = rank_batch(engine, FeatureStore(engine), [first, second, first])
    assert [ranking.request_id for ranking in ranked] == [first.subject_id, second.subject_id]
    assert len(rankings(engine)) == 2 and len(outbox(engine, Subjects.REQUEST_RANKED)) == 2


def test_a_cancelled_request_in_a_batch_is_not_reopened(client: TestClient, auth: Auth, engine: Engine) -> None:
    project(engine, expert_event(expert_id="okinawa"))
    kept, cancelled = (submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(2))
    response = client.post(
        f"/requests/{cancelled.subject_id}/cancel", json={"reason": "自社で対応"}, headers=auth(Role.SME, "sme-1")
    )
    assert response.status_code == 200, response.text
    ranked = rank_batch(engine, FeatureStore(engine), [cancelled, kept])
    assert [ranking.request_id for ranking in ranked] == [kept.subject_id]
    with Session(engine) as session:
        assert repository.get_request(session, cancelled.subject_id).status == "cancelled"
    assert rank_batch(engine, FeatureStore(engine), [cancelled]) == []  # claimed: its redelivery changes nothing


def test_a_request_cancelled_while_its_batch_is_ranked_is_not_reopened(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """The batch reads and ranks before it writes: a cancellation committed in between wins."""
    project(engine, expert_event(expert_id="okinawa"))
    kept, cancelled = (submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(2))

    def cancel() -> None:
        response = client.post(
            f"/requests/{cancelled.subject_id}/cancel", json={"reason": "自社で対応"}, headers=auth(Role.SME, "sme-1")
        )
        assert response.status_code == 200, response.text

    with writing_during_refresh(FeatureStore(engine), cancel) as store:
        ranked = rank_batch(engine, store, [kept, cancelled])
    assert [ranking.request_id for ranking in ranked] == [kept.subject_id]
    with Session(engine) as session:
        assert repository.get_request(session, cancelled.subject_id).status == "cancelled"
    assert [event.subject_id for event in outbox(engine, Subjects.REQUEST_RANKED)] == [kept.subject_id]


def test_a_batch_is_written_with_one_statement_per_table_whatever_its_size(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """The claims, the requests' new state, the rankings and their events: one write statement each, for one
    submission as for many (an executemany counts once); each request ranked once, each event once."""
    project(engine, expert_event(expert_id="okinawa"))
    store = FeatureStore(engine)
    writes: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement.split("(", 1)[0].split(" SET", 1)[0].strip())

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        alone = [submit_as(client, auth, engine, "req-alone", prefecture="47")]
        writes.clear()
        assert len(rank_batch(engine, store, alone)) == 1
        written_alone = list(writes)
        many = [submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(5)]
        writes.clear()
        assert [ranking.request_id for ranking in rank_batch(engine, store, many)] == [e.subject_id for e in many]
        written_many = list(writes)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert len(written_alone) == len(written_many) == 4, written_many
    assert sorted(Counter(r.request_id for r in rankings(engine)).values()) == [1] * 6
    announced = Counter(event.subject_id for event in outbox(engine, Subjects.REQUEST_RANKED))
    assert announced == Counter(event.subject_id for event in alone + many)
    with Session(engine) as session:
        assert {repository.get_request(session, e.subject_id).entity_version for e in alone + many} == {2}


def test_a_request_edited_while_its_batch_is_ranked_keeps_its_newer_version(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """An edit committed between the batch's read and its write wins: the ranking of the older version is not
    written (nor announced), the request keeps the edit, and the edit's own submission ranks it."""
    project(engine, expert_event(expert_id="okinawa"))
    kept, edited = (submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(2))

    def edit() -> None:
        response = client.patch(
            f"/requests/{edited.subject_id}", json={"title": "編集後"}, headers=auth(Role.SME, "sme-1")
        )
        assert response.status_code == 200, response.text

    with writing_during_refresh(FeatureStore(engine), edit) as store:
        assert [ranking.request_id for ranking in rank_batch(engine, store, [kept, edited])] == [kept.subject_id]
    with Session(engine) as session:
        request = repository.get_request(session, edited.subject_id)
        assert request.title == "編集後" and request.status == "submitted" and request.entity_version == 2
    assert [event.subject_id for event in outbox(engine, Subjects.REQUEST_RANKED)] == [kept.subject_id]
    assert rank_batch(engine, FeatureStore(engine), [edited]) == []  # claimed: its redelivery ranks nothing
    resubmitted = outbox(engine, Subjects.REQUEST_SUBMITTED)[-1]
    assert resubmitted.subject_id == edited.subject_id and resubmitted.entity_version == 2
    [ranking] = rank_batch(engine, FeatureStore(engine), [resubmitted])  # the edit's own submission
    assert ranking.request_id == edited.subject_id
    ranked = outbox(engine, Subjects.REQUEST_RANKED)[-1]
    assert ranked.subject_id == edited.subject_id and ranked.entity_version == 3


def test_an_event_claimed_by_another_worker_while_its_batch_is_ranked_ranks_nothing(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """Two workers fetched the same event (a redelivery after an ack timeout): the one that commits its claim
    first answers it; the other writes nothing for it, and the rest of its batch still ranks."""
    project(engine, expert_event(expert_id="okinawa"))
    kept, taken = (submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(2))
    store = FeatureStore(engine)
    refresh = store.refresh

    def refresh_while_another_claims():
        matrix = refresh()
        with session_scope(engine) as other:
            assert claim_event(other, ProcessedEvent, taken.id, SCORER_CONSUMER)
        return matrix

    store.refresh = refresh_while_another_claims  # type: ignore[method-assign]
    assert [ranking.request_id for ranking in rank_batch(engine, store, [taken, kept])] == [kept.subject_id]
    assert [ranking.request_id for ranking in rankings(engine)] == [kept.subject_id]
    with Session(engine) as session:
        assert repository.get_request(session, taken.subject_id).status == "submitted"  # left to the other


def test_a_batch_with_a_bad_event_writes_nothing_and_its_good_events_rank_alone(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    """A failed batch rolls back whole (the consumer then handles its events one by one)."""
    project(engine, expert_event(expert_id="okinawa"))
    good = submit_as(client, auth, engine, "req-good", prefecture="47")
    gone = envelope(
        Subjects.REQUEST_SUBMITTED,
        {"request_id": "gone", "prefecture": "47", "delivery": "either", "topics": ["ransomware"]},
        subject_id="gone",
    )
    store = FeatureStore(engine)
    with pytest.raises(PermanentEventError):
        rank_batch(engine, store, [good, gone])
    assert rankings(engine) == [] and outbox(engine, Subjects.REQUEST_RANKED) == []
    assert [ranking.request_id for ranking in rank_batch(engine, store, [good])] == [good.subject_id]


def test_ranking_holds_no_write_lock_while_it_reads_and_ranks(
    client: TestClient, auth: Auth, engine: Engine, database_url: str
) -> None:
    """On SQLite the first write takes the file's write lock until the commit: the batch writes only after
    ranking, so a submission made meanwhile is not kept waiting (here: refused at once, with no wait)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock")
    project(engine, expert_event(expert_id="okinawa"))
    first, second = (submit_as(client, auth, engine, f"req-{i}", prefecture="47") for i in range(2))
    store = FeatureStore(engine)
    refresh = store.refresh
    impatient = create_engine(database_url, connect_args={"timeout": 0})  # "database is locked" at once
    written = []

    def refresh_and_write():
        matrix = refresh()
        with impatient.begin() as connection:
            connection.execute(text("UPDATE requests SET title = title WHERE id = :id"), {"id": second.subject_id})
        written.append(True)
        return matrix

    store.refresh = refresh_and_write  # type: ignore[method-assign]
    try:
        assert len(rank_batch(engine, store, [first, second])) == 2
    finally:
        impatient.dispose()
    assert written == [True]


async def test_the_scorer_consumer_hands_a_fetched_batch_to_one_transaction(engine: Engine) -> None:
    [scorer] = scorer_consumers(engine, FeatureStore(engine), lambda: None)
    assert scorer.batch_handler is not None and scorer.fetch_batch > 1
