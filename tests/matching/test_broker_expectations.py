"""What a chamber-of-commerce broker expects of the ranking, written from the broker's side.

Each test sets up a few experts the way profiles announces them, lets an SME submit a request through the
matching API, lets the scorer rank it (the worker's own handler, on a real database) and reads the ranking
as a broker (or as the SME) would. The experts are named for what they are, so a failing assertion reads
like the broker's complaint.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.matching.consumers import rank_submitted_request
from services.matching.models import Proposal, Ranking, Rating
from services.matching.scoring.features import FeatureStore
from services.matching.scoring.ranker import RankingInput, rank
from services.matching.scoring.weights import DEFAULT_WEIGHTS
from tests.factories import PUBLIC_FIELDS, request_body
from tests.matching.conftest import Auth, expert_event, organization_event, outbox, project
from tsunagu.auth import Role
from tsunagu.db import session_scope
from tsunagu.events import Subjects

TOKYO, SAITAMA, OSAKA, OKINAWA = "13", "11", "27", "47"
FRESH = (datetime.now(UTC) - timedelta(days=3)).isoformat()


def expert(expert_id: str, **overrides) -> None:
    """An active, fresh 登録セキスペ on site in Tokyo, strong on ransomware and backups, with room for two."""
    values = dict(
        expert_id=expert_id,
        prefectures=[TOKYO],
        onsite=True,
        remote=False,
        topics={"ransomware": 3, "backup_bcp": 3},
        skills=[],
        capacity=2,
        last_confirmed_at=FRESH,
        registration_expires_on=(date.today() + timedelta(days=400)).isoformat(),
    )
    values.update(overrides)
    return expert_event(**values)


class Broker:
    """The broker's view: submit as the SME, rank as the worker does, read as a broker of the prefecture."""

    def __init__(self, client: TestClient, auth: Auth, engine: Engine) -> None:
        self.client, self.auth, self.engine = client, auth, engine
        self.store = FeatureStore(engine)

    def know(self, *events) -> None:
        project(self.engine, *events)

    def ranking(self, reader: Role = Role.BROKER, **request) -> list[dict]:
        body = request_body(**({"prefecture": TOKYO} | request))
        response = self.client.post("/requests", json=body, headers=self.auth(Role.SME, "sme-1"))
        assert response.status_code == 201, response.text
        event = outbox(self.engine, Subjects.REQUEST_SUBMITTED)[-1]
        self.last_request = event
        with session_scope(self.engine) as session:
            assert rank_submitted_request(session, self.store, event) is not None
        headers = self.auth(reader, "sme-1" if reader == Role.SME else "broker-1", prefectures=[body["prefecture"]])
        shown = self.client.get(f"/requests/{event.subject_id}/ranking", headers=headers)
        assert shown.status_code == 200, shown.text
        return shown.json()["entries"]

    def order(self, **request) -> list[str]:
        return [entry["expert_id"] for entry in self.ranking(**request)]

    def take_place(self, expert_id: str) -> str:
        """The expert accepted a proposal elsewhere: one of their places is taken."""
        with session_scope(self.engine) as session:
            proposal = Proposal(
                request_id=str(uuid.uuid4()),
                expert_id=expert_id,
                broker_id="broker-x",
                state="accepted",
                expires_at=datetime.now(UTC) + timedelta(days=5),
            )
            session.add(proposal)
            return proposal.id

    def free_place(self, proposal_id: str) -> None:
        with session_scope(self.engine) as session:
            proposal = session.get(Proposal, proposal_id)
            proposal.state = "confirmed"  # as if the engagement then completed: no longer open
            session.add(proposal)

    def rated(self, expert_id: str, *stars: int) -> None:
        with session_scope(self.engine) as session:
            for value in stars:
                session.add(
                    Rating(engagement_id=str(uuid.uuid4()), side="sme", rater_id="s", expert_id=expert_id, stars=value)
                )

    def shown_before(self, expert_id: str, times: int) -> None:
        """The expert came first in ``times`` recent rankings of other requests."""
        with session_scope(self.engine) as session:
            for _ in range(times):
                session.add(
                    Ranking(
                        request_id=str(uuid.uuid4()),
                        source_event_id=str(uuid.uuid4()),
                        weights_version=DEFAULT_WEIGHTS.version,
                        candidate_count=1,
                        entries=[{"rank": 1, "expert_id": expert_id}],
                    )
                )


def broker(client: TestClient, auth: Auth, engine: Engine) -> Broker:
    return Broker(client, auth, engine)


def test_for_on_site_help_the_local_specialist_comes_first_then_a_neighbour(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    b = broker(client, auth, engine)
    b.know(
        expert("local-specialist"),
        expert("local-generalist", topics={"ransomware": 1}),
        expert("saitama-specialist", prefectures=[SAITAMA]),
        expert("osaka-specialist", prefectures=[OSAKA]),  # too far to come on site
        expert("remote-only-specialist", onsite=False, remote=True),
    )
    assert b.order(delivery="onsite") == ["local-specialist", "saitama-specialist", "local-generalist"]


def test_who_must_never_appear(client: TestClient, auth: Auth, engine: Engine) -> None:
    b = broker(client, auth, engine)
    organization = "org-sme"
    b.know(organization_event(organization_id=organization, prefecture=TOKYO, member_user_ids=["sme-1"]))
    b.know(
        expert("eligible"),
        expert("inactive", active=False),
        expert("expired", registration_expires_on=(date.today() - timedelta(days=1)).isoformat()),
        expert("full", capacity=1),
        expert("conflicted", conflicted_organization_ids=["org-other", organization]),
        expert("employed-by-the-sme", employer_organization_id=organization),
    )
    taken = b.take_place("full")
    assert b.order(organization_id=organization) == ["eligible"]
    # Another SME may see the conflicted and employed experts; the full one stays out until a place frees.
    assert set(b.order()) == {"eligible", "conflicted", "employed-by-the-sme"}
    b.free_place(taken)
    assert "full" in b.order(organization_id=organization)


def test_neighbours_and_remote_help_compare_as_a_broker_expects(client: TestClient, auth: Auth, engine: Engine) -> None:
    b = broker(client, auth, engine)
    b.know(
        expert("local", remote=True),
        expert("neighbour", prefectures=[SAITAMA], remote=True),
        expert("okinawa-remote", prefectures=[OKINAWA], onsite=False, remote=True),
        expert("okinawa-on-site-only", prefectures=[OKINAWA]),
    )
    # Either way: closeness first, remote help still counts, someone who can neither come nor call does not.
    assert b.order(delivery="either") == ["local", "neighbour", "okinawa-remote"]
    # Remote help: only who helps remotely, and distance matters less (the remote expert is not last by much).
    remote = b.ranking(delivery="remote")
    assert [entry["expert_id"] for entry in remote] == ["local", "neighbour", "okinawa-remote"]
    assert remote[0]["score"] - remote[2]["score"] < DEFAULT_WEIGHTS.region


def test_the_self_diagnosis_brings_the_expert_for_the_weak_spot(client: TestClient, auth: Auth, engine: Engine) -> None:
    b = broker(client, auth, engine)
    b.know(
        expert("ransomware-only", topics={"ransomware": 3}),
        expert("ransomware-and-passwords", topics={"ransomware": 3, "authentication": 3}),
    )
    # Without the diagnosis the two are equal on the stated topic (the tie is broken by id).
    plain = b.ranking(topics=["ransomware"])
    assert plain[0]["score"] == plain[1]["score"]
    # Question 3 (passwords) answered "no": the diagnosis adds authentication, and the broker sees why.
    diagnosed = b.ranking(topics=["ransomware"], self_diagnosis={"3": "no"})
    assert diagnosed[0]["expert_id"] == "ransomware-and-passwords"
    assert "相談テーマ2件中2件が得意分野" in diagnosed[0]["reason_ja"]


def test_the_same_input_gives_the_same_order(client: TestClient, auth: Auth, engine: Engine) -> None:
    b = broker(client, auth, engine)
    b.know(*(expert(f"twin-{index}") for index in range(6)), expert("weaker", topics={"ransomware": 1}))
    first = b.order()
    assert first == [*sorted(first[:6]), "weaker"]  # equal experts in a stable order (by id)
    # Ranking that request again, on this worker or on a fresh one (cold matrix), gives the same order:
    # its own last ranking does not count as exposure against the experts it showed.
    data = b.last_request.data
    again = RankingInput(
        data["prefecture"], data["delivery"], data["topics"], [], None, None, b.last_request.subject_id
    )
    for store in (b.store, FeatureStore(engine)):
        assert [entry.expert_id for entry in rank(store.refresh(), again)[0]] == first
    # A new request with the same input comes after the first was shown: only the equal twins rotate.
    second = b.order()
    assert sorted(second[:6]) == sorted(first[:6]) and second[6] == "weaker" and second[0] != first[0]


def test_good_outcomes_count_but_one_lucky_rating_does_not_jump_the_queue(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    b = broker(client, auth, engine)
    b.know(expert("proven"), expert("one-lucky-rating"), expert("unrated"), expert("poorly-rated"))
    b.rated("proven", *([5] * 19 + [4]))
    b.rated("one-lucky-rating", 5)
    b.rated("poorly-rated", 2, 1, 2, 2, 1, 2)
    entries = b.ranking()
    assert [entry["expert_id"] for entry in entries] == ["proven", "one-lucky-rating", "unrated", "poorly-rated"]
    assert "中小企業からの評価 平均4.9（20件）" in entries[0]["reason_ja"]


def test_fairness_moves_near_ties_but_never_a_clearly_worse_expert_above_a_clearly_better_one(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    b = broker(client, auth, engine)
    b.know(
        expert("busy-twin"),
        expert("quiet-twin"),
        expert("busy-star", skills=["aws"]),
        expert("quiet-weaker", skills=["aws"], topics={"ransomware": 3, "backup_bcp": 2}),
    )
    b.shown_before("busy-twin", 40)
    b.shown_before("busy-star", 40)
    entries = b.ranking(skills=["aws"])
    order = [entry["expert_id"] for entry in entries]
    # The twins are equal: the one shown less often now comes first ...
    assert order.index("quiet-twin") < order.index("busy-twin")
    # ... but the clearly better expert stays above the clearly worse one, however often it was shown.
    assert order.index("busy-star") < order.index("quiet-weaker") and order[0] == "busy-star"
    penalties = {entry["expert_id"]: entry["contributions"]["fairness"] for entry in entries}
    assert -DEFAULT_WEIGHTS.fairness_max <= penalties["busy-twin"] < -0.02 and penalties["quiet-twin"] == 0.0
    assert "最近の紹介が多いため順位を少し調整" in entries[order.index("busy-twin")]["reason_ja"]


def test_an_sme_reads_no_reason_the_expert_keeps_from_it(client: TestClient, auth: Auth, engine: Engine) -> None:
    b = broker(client, auth, engine)
    private_area = [name for name in PUBLIC_FIELDS if name != "prefectures"]
    b.know(expert("private-area", public_fields=private_area, broker_fields=[*private_area, "prefectures"]))
    b.rated("private-area", 5, 5)
    sme = b.ranking(reader=Role.SME)[0]
    assert "同じ都道府県" not in sme["reason_ja"] and "same prefecture" not in sme["reason_en"]
    assert "region" not in sme["contributions"] and "undisclosed" in sme["contributions"]
    assert "評価" not in sme["reason_ja"] and "活動確認" not in sme["reason_ja"] and "views" not in sme
    assert "ランサムウェア対策" in sme["reason_ja"]  # what is public is still said
    staff = b.ranking(reader=Role.BROKER)[0]
    assert staff["reason_ja"].startswith("同じ都道府県で対応") and "region" in staff["contributions"]
    assert "評価 平均5.0（2件）" in staff["reason_ja"] and "views" not in staff


def test_the_industry_factor_is_named_in_words(client: TestClient, auth: Auth, engine: Engine) -> None:
    b = broker(client, auth, engine)
    b.know(expert("manufacturing", industries=["製造業"]), expert("no-industry"))
    entries = b.ranking(industry="製造業")
    assert entries[0]["expert_id"] == "manufacturing"
    assert "業種（製造業）の支援経験あり" in entries[0]["reason_ja"]
    assert "has worked in the industry (製造業)" in entries[0]["reason_en"]
    assert "業種" not in entries[1]["reason_ja"]
