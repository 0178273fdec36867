"""Two transitions racing on one proposal, each in its own thread and session against the same database
(PostgreSQL in CI via TSUNAGU_TEST_POSTGRES_ADMIN_URL, SQLite otherwise): exactly one wins, the other gets
the 409 of a stale state, and exactly one event and one audit row are written."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.matching import service
from services.matching.models import Transition
from services.matching.schemas import ProposalCreate
from services.matching.settings import MatchingSettings
from tests.factories import request_body
from tests.matching.conftest import expert_event, organization_event, outbox, project
from tsunagu.auth import Principal, Role
from tsunagu.errors import ApiError
from tsunagu.events import Subjects

EXPERT = Principal(sub="expert-r", role=Role.EXPERT)
BROKER = Principal(sub="broker-r", role=Role.BROKER, prefectures=["47"])


def _proposal(engine: Engine, settings: MatchingSettings) -> str:
    project(
        engine,
        organization_event(organization_id="org-r", member_user_ids=["sme-r"]),
        expert_event(expert_id="exp-r", owner_user_id="expert-r"),
    )
    from services.matching.schemas import RequestCreate

    with Session(engine) as session:
        request = service.submit_request(
            session, Principal(sub="sme-r", role=Role.SME), RequestCreate(**request_body(organization_id="org-r"))
        )
        proposal = service.propose(session, BROKER, request.id, ProposalCreate(expert_id="exp-r"), settings)
        session.commit()
        return proposal.id


def _race(engine: Engine, moves: list[Callable[[Session], object]]) -> list[object]:
    """Run each move in its own thread and session, all released at once; each commits or reports its error."""
    barrier = threading.Barrier(len(moves))
    results: list[object] = [None] * len(moves)

    def run(index: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait()
            try:
                moves[index](session)
                session.commit()
                results[index] = "won"
            except ApiError as error:
                session.rollback()
                results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(moves))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_an_accept_and_a_withdraw_racing_exactly_one_wins(engine: Engine, settings: MatchingSettings) -> None:
    proposal_id = _proposal(engine, settings)
    results = _race(
        engine,
        [
            lambda session: service.accept_proposal(session, EXPERT, proposal_id),
            lambda session: service.withdraw_proposal(session, BROKER, proposal_id, "手違い"),
        ],
    )
    assert results.count("won") == 1, results
    [lost] = [r for r in results if r != "won"]
    assert isinstance(lost, ApiError) and lost.status_code == 409 and lost.message_ja
    events = outbox(engine, Subjects.PROPOSAL_ACCEPTED) + outbox(engine, Subjects.PROPOSAL_WITHDRAWN)
    assert len(events) == 1
    with Session(engine) as session:
        rows = session.exec(
            select(Transition).where(Transition.object_id == proposal_id).order_by(col(Transition.at))
        ).all()
        assert [row.from_state for row in rows] == [None, "proposed"]


def test_two_accepts_racing_exactly_one_wins(engine: Engine, settings: MatchingSettings) -> None:
    proposal_id = _proposal(engine, settings)
    results = _race(engine, [lambda session: service.accept_proposal(session, EXPERT, proposal_id)] * 2)
    assert results.count("won") == 1, results
    assert len(outbox(engine, Subjects.PROPOSAL_ACCEPTED)) == 1


def test_two_accepts_of_one_expert_on_different_requests_never_exceed_the_capacity(
    engine: Engine, settings: MatchingSettings
) -> None:
    """The expert has one place left and two proposals waiting: accepting both at once must not overbook."""
    from services.matching.schemas import RequestCreate

    project(
        engine,
        organization_event(organization_id="org-r", member_user_ids=["sme-r"]),
        expert_event(expert_id="exp-one", owner_user_id="expert-r", capacity=1),
    )
    proposals = []
    with Session(engine) as session:
        for _ in range(2):
            request = service.submit_request(
                session, Principal(sub="sme-r", role=Role.SME), RequestCreate(**request_body(organization_id="org-r"))
            )
            proposals.append(
                service.propose(session, BROKER, request.id, ProposalCreate(expert_id="exp-one"), settings).id
            )
        session.commit()
    results = _race(engine, [lambda session, p=p: service.accept_proposal(session, EXPERT, p) for p in proposals])
    assert results.count("won") == 1, results
    [lost] = [r for r in results if r != "won"]
    assert isinstance(lost, ApiError) and lost.status_code == 409 and lost.code == "expert_full", lost
    assert len(outbox(engine, Subjects.PROPOSAL_ACCEPTED)) == 1
