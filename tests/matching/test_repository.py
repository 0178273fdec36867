"""The queries: request lists (scopes, status, order, pages), the latest ranking, members, and the change
sequence the scorers load the projection by."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.matching import repository
from services.matching.models import ExpertFeature, Ranking, SmeRequest
from tests.factories import expert_features_data

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def add_request(session: Session, request_id: str, minutes: int, **values) -> SmeRequest:
    fields = {"created_by": "sme-1", "title": "相談", "prefecture": "47", "delivery": "either"} | values
    request = SmeRequest(id=request_id, created_at=START + timedelta(minutes=minutes), **fields)
    session.add(request)
    session.commit()
    return request


def listed(session: Session, **scope) -> tuple[list[str], int]:
    rows, total = repository.list_requests(
        session, limit=scope.pop("limit", 20), offset=scope.pop("offset", 0), **scope
    )
    return [row.id for row in rows], total


def test_request_lists_by_scope_status_and_page(session: Session) -> None:
    add_request(session, "own", 1)
    add_request(session, "org", 2, created_by="colleague", organization_id="o-1", prefecture="13")
    add_request(session, "other", 3, created_by="sme-2", prefecture="13", status="ranked")

    assert listed(session) == (["other", "org", "own"], 3)  # newest first
    assert listed(session, created_by="sme-1", organization_ids=[]) == (["own"], 1)
    assert listed(session, created_by="sme-1", organization_ids=["o-1"]) == (["org", "own"], 2)
    assert listed(session, prefectures=["13"]) == (["other", "org"], 2)
    assert listed(session, prefectures=[]) == ([], 0)
    assert listed(session, prefectures=["13"], status="ranked") == (["other"], 1)
    assert listed(session, limit=1, offset=1) == (["org"], 3)  # the total counts every match


def test_the_latest_ranking_is_shown(session: Session) -> None:
    assert repository.latest_ranking(session, "r-1") is None
    for minutes, event_id in ((1, "first"), (5, "second")):
        session.add(
            Ranking(
                request_id="r-1",
                source_event_id=event_id,
                weights_version="v",
                candidate_count=0,
                computed_at=START + timedelta(minutes=minutes),
            )
        )
    session.commit()
    assert repository.latest_ranking(session, "r-1").source_event_id == "second"


def test_members_are_replaced_and_looked_up_both_ways(session: Session) -> None:
    repository.replace_members(session, "o-1", ["a", "b", "a"])
    repository.replace_members(session, "o-2", ["a"])
    session.commit()
    assert sorted(repository.organizations_of_member(session, "a")) == ["o-1", "o-2"]
    repository.replace_members(session, "o-1", ["b"])
    session.commit()
    assert repository.organizations_of_member(session, "a") == ["o-2"]
    assert repository.is_member(session, "o-1", "b") and not repository.is_member(session, "o-1", "a")


def test_features_are_read_by_change_sequence(session: Session) -> None:
    assert repository.next_change_seq(session) == 1
    for expert_id in ("x", "y", "z"):
        data = expert_features_data(expert_id=expert_id)
        session.add(ExpertFeature(entity_version=1, change_seq=repository.next_change_seq(session), **data))
        session.flush()
    session.commit()
    assert repository.next_change_seq(session) == 4
    rows = list(repository.expert_features_changed_since(session, ["expert_id", "change_seq", "capacity"], 1))
    assert rows == [("y", 2, 2), ("z", 3, 2)]
