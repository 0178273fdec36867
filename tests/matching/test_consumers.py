"""The event handlers: the projections (idempotent by event id, newer versions only, organisation members
replaced, a batch all or nothing) and the scorer's (ranks once, the ranked event in the outbox)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.matching import repository
from services.matching.consumers import projection_consumers, rank_submitted_request, scorer_consumers
from services.matching.models import ExpertFeature, OrganizationMember, Ranking
from services.matching.scoring.features import FeatureStore
from tests.factories import request_body
from tests.matching.conftest import Auth, envelope, expert_event, organization_event, outbox, project
from tsunagu.auth import Role
from tsunagu.contracts import PermanentEventError
from tsunagu.db import session_scope
from tsunagu.events import EventEnvelope, Subjects


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
