"""The rules, without HTTP: who may read a request, which requests a caller's list holds, what a submitted
request is made of, and that nothing is written until the caller commits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.matching import service
from services.matching.models import SmeRequest
from services.matching.schemas import RequestCreate
from tests.factories import request_body
from tests.matching.conftest import organization_event, outbox, project
from tsunagu.auth import Principal, Role
from tsunagu.errors import ApiError
from tsunagu.pagination import PageParams

SME = Principal(sub="sme-1", role=Role.SME)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def submit(session: Session, principal: Principal = SME, **overrides) -> SmeRequest:
    request = service.submit_request(session, principal, RequestCreate(**request_body(**overrides)))
    session.commit()
    return request


def principal(role: Role, sub: str = "someone", prefectures: list[str] | None = None) -> Principal:
    return Principal(sub=sub, role=role, prefectures=prefectures or [])


@pytest.mark.parametrize(
    ("reader", "allowed"),
    [
        (principal(Role.SME, "sme-1"), True),  # made it
        (principal(Role.SME, "colleague"), True),  # acts for its organisation
        (principal(Role.SME, "sme-2"), False),
        (principal(Role.BROKER, prefectures=["47"]), True),
        (principal(Role.BROKER, prefectures=["13"]), False),
        (principal(Role.HUB, prefectures=["47"]), True),
        (principal(Role.HUB, prefectures=["13"]), False),
        (principal(Role.HUB), False),
        (principal(Role.EXPERT), False),
        (principal(Role.ADMIN), True),
        (principal(Role.SERVICE), True),
    ],
)
def test_who_may_read_a_request(engine: Engine, session: Session, reader: Principal, allowed: bool) -> None:
    project(engine, organization_event(organization_id="o-1", member_user_ids=["sme-1", "colleague"]))
    request = submit(session, organization_id="o-1", prefecture="47")
    assert service.can_read_request(session, reader, request) is allowed
    if not allowed:
        with pytest.raises(ApiError) as refused:
            service.readable_request(session, reader, request.id)
        assert refused.value.status_code == 404  # the same answer as for an id that does not exist


def test_a_list_holds_what_the_caller_may_read(engine: Engine, session: Session) -> None:
    project(engine, organization_event(organization_id="o-1", member_user_ids=["sme-1", "colleague"]))
    own = submit(session, prefecture="47")
    shared = submit(session, principal(Role.SME, "colleague"), organization_id="o-1", prefecture="13")
    other = submit(session, principal(Role.SME, "sme-2"), prefecture="13")

    def listed(reader: Principal) -> set[str]:
        rows, total = service.list_visible_requests(session, reader, status=None, page=PageParams())
        assert total == len(rows)
        return {row.id for row in rows}

    assert listed(SME) == {own.id, shared.id}
    assert listed(principal(Role.HUB, prefectures=["13"])) == {shared.id, other.id}
    assert listed(principal(Role.ADMIN)) == {own.id, shared.id, other.id}
    with pytest.raises(ApiError) as refused:
        listed(principal(Role.EXPERT))
    assert refused.value.status_code == 403

    # Members are replaced by the next organisation event: a former member no longer sees its requests.
    project(engine, organization_event(version=2, organization_id="o-1", member_user_ids=["colleague"]))
    assert listed(SME) == {own.id}


def test_topics_are_the_chosen_ones_then_those_the_self_diagnosis_points_to(session: Session) -> None:
    request = submit(session, topics=["education"], self_diagnosis={"1": "no", "2": "yes", "3": "partly"})
    assert request.explicit_topics == ["education"]
    assert request.topics[0] == "education" and len(request.topics) == 3  # "2": yes adds nothing
    assert request.self_diagnosis == {"1": "no", "2": "yes", "3": "partly"}


def test_a_request_for_an_organisation_needs_a_member(engine: Engine, session: Session) -> None:
    project(engine, organization_event(organization_id="o-1", member_user_ids=["colleague"]))
    with pytest.raises(ApiError) as refused:
        submit(session, organization_id="o-1")
    assert refused.value.status_code == 403
    with pytest.raises(ApiError) as unknown:
        submit(session, organization_id="o-unknown")
    assert unknown.value.status_code == 422 and unknown.value.fields[0]["field"] == "organization_id"
    assert submit(session, principal(Role.ADMIN), organization_id="o-1").organization_id == "o-1"


def test_nothing_is_written_until_the_caller_commits(engine: Engine, session: Session) -> None:
    service.submit_request(session, SME, RequestCreate(**request_body()))
    session.rollback()
    assert outbox(engine) == []
    rows, total = service.list_visible_requests(session, SME, status=None, page=PageParams())
    assert total == 0 and rows == []
