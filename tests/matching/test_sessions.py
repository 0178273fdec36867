"""相談会 (consultation days) over HTTP: a broker of the venue's prefecture creates a day and solves its plan,
SMEs register, the plan is optimal (checked by brute force on small days), respects capacities, slots and
conflicts of interest, says why anyone is unserved, and the schedule comes as iCalendar and CSV. Everyone
else gets 403/404, bad input 422 naming the field."""

from __future__ import annotations

import csv
import io
import random

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy.engine import Engine

from services.matching.assignment import Registration, Seat, SessionInstance, brute_force_session, solve_session
from tests import factories
from tests.matching.conftest import Auth, expert_event, field_names, organization_event, outbox, project
from tsunagu.auth import Role
from tsunagu.events import Subjects

BROKER = {"prefectures": ["47"]}


def _experts(engine: Engine, *overrides: dict) -> list[str]:
    events = [expert_event(**override) for override in overrides]
    project(engine, *events)
    return [event.data["expert_id"] for event in events]


def _broker(auth: Auth) -> dict[str, str]:
    return auth(Role.BROKER, "broker-47", prefectures=["47"])


def _create(client: TestClient, auth: Auth, expert_ids: list[str], **overrides) -> dict:
    response = client.post("/sessions", json=factories.session_body(expert_ids, **overrides), headers=_broker(auth))
    assert response.status_code == 201, response.text
    return response.json()


def _register(client: TestClient, auth: Auth, session_id: str, user: str, **body) -> dict:
    response = client.post(
        f"/sessions/{session_id}/registrations", json=factories.registration_body(**body), headers=auth(Role.SME, user)
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_broker_creates_a_day_smes_register_and_the_plan_serves_everyone(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    a, b = _experts(
        engine,
        {"display_name": "安里", "owner_user_id": "user-asato"},
        {"display_name": "比嘉", "topics": {"ransomware": 2, "backup_bcp": 3}},  # imported: no account yet
    )
    day = _create(client, auth, [a, b])
    assert day["state"] == "open" and [s["index"] for s in day["slots"]] == [0, 1, 2]
    # The invited experts with an account are named in the event, so the notifier can tell them.
    [created] = outbox(engine, Subjects.SESSION_CREATED)
    assert created.data["invited_expert_user_ids"] == ["user-asato"]
    assert {e["expert_id"] for e in day["experts"]} == {a, b}
    registrations = [
        _register(client, auth, day["id"], f"sme-{i}", topics=["ransomware", "backup_bcp"]) for i in range(4)
    ]
    response = client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth))
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["status"] == "optimal" and plan["served"] == 4 and plan["unserved"] == [] and plan["reasons_ja"] == []
    assert {m["registration_id"] for m in plan["meetings"]} == {r["id"] for r in registrations}
    # Capacity: two meetings each; the objective is the sum of the chosen pairs' scores.
    assert sorted(m["expert_id"] for m in plan["meetings"]).count(a) <= 2
    scores = {(p["registration_id"], p["expert_id"]): p["score"] for p in plan["pair_scores"]}
    assert len(scores) == 8
    assert plan["objective"] == pytest.approx(
        sum(scores[m["registration_id"], m["expert_id"]] for m in plan["meetings"])
    )
    assert all(m["reason_ja"] and m["start"] for m in plan["meetings"])
    # b covers both topics more deeply: with room for two, b takes two and a the other two.
    assert sum(1 for m in plan["meetings"] if m["expert_id"] == b) == 2
    published = client.get(f"/sessions/{day['id']}", headers=_broker(auth)).json()
    assert published["state"] == "published" and len(published["meetings"]) == 4
    [event] = outbox(engine, Subjects.SESSION_PUBLISHED)
    assert {m["registration_id"] for m in event.data["meetings"]} == {r["id"] for r in registrations}
    assert set(event.data["affected_user_ids"]) >= {f"sme-{i}" for i in range(4)}
    assert len(outbox(engine, Subjects.SESSION_REGISTERED)) == 4 and outbox(engine, Subjects.SESSION_CREATED)


def test_nobody_is_in_two_places_and_capacities_hold(client: TestClient, auth: Auth, engine: Engine) -> None:
    experts = _experts(engine, *({"display_name": f"専門家{i}"} for i in range(3)))
    day = _create(
        client,
        auth,
        experts,
        max_meetings_per_sme=2,
        experts=[{"expert_id": e, "max_meetings": m} for e, m in zip(experts, (3, 1, 2), strict=True)],
    )
    for i in range(5):
        _register(client, auth, day["id"], f"sme-{i}")
    plan = client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth)).json()
    meetings = plan["meetings"]
    assert len({(m["slot"], m["expert_id"]) for m in meetings}) == len(meetings)
    assert len({(m["slot"], m["registration_id"]) for m in meetings}) == len(meetings)
    assert len({(m["registration_id"], m["expert_id"]) for m in meetings}) == len(meetings)
    for expert_id, limit in zip(experts, (3, 1, 2), strict=True):
        assert sum(1 for m in meetings if m["expert_id"] == expert_id) <= limit
    assert plan["served"] == 5  # six places for five SMEs: everyone gets one before anyone gets two
    assert len(meetings) == 6


def test_a_conflicted_or_employed_expert_never_meets_that_sme(client: TestClient, auth: Auth, engine: Engine) -> None:
    organization = organization_event(member_user_ids=["sme-org"])
    project(engine, organization)
    organization_id = organization.data["organization_id"]
    conflicted, employed, free = _experts(
        engine,
        {"conflicted_organization_ids": [organization_id]},
        {"employer_organization_id": organization_id},
        {"topics": {"ransomware": 1}},
    )
    day = _create(client, auth, [conflicted, employed, free])
    mine = _register(client, auth, day["id"], "sme-org", organization_id=organization_id)
    plan = client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth)).json()
    assert {p["expert_id"] for p in plan["pair_scores"] if p["registration_id"] == mine["id"]} == {free}
    assert [m["expert_id"] for m in plan["meetings"] if m["registration_id"] == mine["id"]] == [free]


def test_when_not_everyone_fits_the_reasons_count_demand_against_capacity(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    [expert] = _experts(engine, {})
    day = _create(client, auth, [expert], experts=[{"expert_id": expert, "max_meetings": 2}])
    for i in range(4):
        _register(client, auth, day["id"], f"sme-{i}")
    lonely = _register(client, auth, day["id"], "sme-web", topics=["bec"])
    plan = client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth)).json()
    assert plan["served"] == 2 and len(plan["unserved"]) == 3
    assert any(
        "ランサムウェア" in reason and "4件に対し" in reason and "枠が2件" in reason for reason in plan["reasons_ja"]
    )
    unserved = {u["registration_id"]: u["reason_ja"] for u in plan["unserved"]}
    assert "招待専門家がいません" in unserved[lonely["id"]]
    assert all("件" in reason or "いません" in reason for reason in unserved.values())
    # The SMEs left out are told too (they are in the event).
    [event] = outbox(engine, Subjects.SESSION_PUBLISHED)
    assert "sme-web" in event.data["unserved_sme_user_ids"]


def _random_day(rng: random.Random) -> tuple[list[dict], list[dict]]:
    experts = [
        {"topics": dict(rng.sample([("ransomware", 3), ("backup_bcp", 2), ("bec", 1)], rng.randint(1, 3)))}
        for _ in range(rng.randint(1, 3))
    ]
    registrations = [
        {"topics": rng.sample(["ransomware", "backup_bcp", "bec"], rng.randint(1, 2))} for _ in range(rng.randint(1, 4))
    ]
    return experts, registrations


@pytest.mark.parametrize("seed", range(6))
def test_the_plan_is_optimal_compared_with_brute_force(
    client: TestClient, auth: Auth, engine: Engine, seed: int
) -> None:
    """Independent check: enumerate every plan of a small day (from the API's own pair_scores) and find the
    same (SMEs served, total score) as the solver."""
    rng = random.Random(seed)
    expert_overrides, registrations = _random_day(rng)
    experts = _experts(engine, *expert_overrides)
    slots = [{"start": f"{10 + i}:00", "end": f"{10 + i}:45"} for i in range(rng.randint(1, 2))]
    seats = [{"expert_id": e, "max_meetings": rng.randint(1, 2)} for e in experts]
    day = _create(client, auth, experts, slots=slots, experts=seats, max_meetings_per_sme=rng.randint(1, 2))
    for i, body in enumerate(registrations):
        _register(client, auth, day["id"], f"sme-{i}", **body)
    plan = client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth)).json()
    instance = SessionInstance(
        len(slots),
        [Seat(s["expert_id"], s["max_meetings"]) for s in seats],
        [
            Registration(r, max_meetings=day["max_meetings_per_sme"])
            for r in {p["registration_id"] for p in plan["pair_scores"]}
        ],
        {(p["registration_id"], p["expert_id"]): p["score"] for p in plan["pair_scores"]},
    )
    served, score = brute_force_session(instance)
    assert (plan["served"], plan["objective"]) == (served, pytest.approx(score, abs=1e-9))


def test_the_solver_alone_matches_brute_force_on_random_days() -> None:
    rng = random.Random(11)
    for _ in range(150):
        slot_count = rng.randint(1, 3)
        seats = [
            Seat(
                f"e{i}",
                rng.randint(0, 3),
                frozenset(rng.sample(range(slot_count), rng.randint(1, slot_count))) if rng.random() < 0.3 else None,
            )
            for i in range(rng.randint(1, 3))
        ]
        registrations = [Registration(f"r{j}", max_meetings=rng.randint(1, 2)) for j in range(rng.randint(1, 4))]
        scores = {
            (r.registration_id, s.expert_id): round(rng.random(), 4)
            for r in registrations
            for s in seats
            if rng.random() < 0.7
        }
        instance = SessionInstance(slot_count, seats, registrations, scores)
        solution = solve_session(instance)
        assert (solution.served, solution.objective) == pytest.approx(brute_force_session(instance))
        taken = [(m.slot, m.expert_id) for m in solution.meetings] + [
            (m.slot, m.registration_id) for m in solution.meetings
        ]
        assert len(taken) == len(set(taken))
        for m in solution.meetings:
            seat = next(s for s in seats if s.expert_id == m.expert_id)
            assert seat.slots is None or m.slot in seat.slots


def test_who_may_create_register_and_solve(client: TestClient, auth: Auth, engine: Engine) -> None:
    [expert] = _experts(engine, {"owner_user_id": "expert-user"})
    body = factories.session_body([expert])
    assert client.post("/sessions", json=body).status_code == 401
    for headers in (auth(Role.SME), auth(Role.EXPERT), auth(Role.HUB, prefectures=["47"])):
        assert client.post("/sessions", json=body, headers=headers).status_code == 403
    assert client.post("/sessions", json=body, headers=auth(Role.BROKER, prefectures=["13"])).status_code == 403
    day = _create(client, auth, [expert])
    path = f"/sessions/{day['id']}"
    # Only SMEs register.
    for headers in (_broker(auth), auth(Role.EXPERT, "expert-user")):
        assert (
            client.post(path + "/registrations", json=factories.registration_body(), headers=headers).status_code == 403
        )
    _register(client, auth, day["id"], "sme-1")
    again = client.post(path + "/registrations", json=factories.registration_body(), headers=auth(Role.SME, "sme-1"))
    assert again.status_code == 409
    # Only the broker of the venue solves; a broker elsewhere does not even see the day.
    for headers in (auth(Role.SME, "sme-1"), auth(Role.EXPERT, "expert-user"), auth(Role.HUB, prefectures=["47"])):
        assert client.post(path + "/assignment", headers=headers).status_code == 403
    other = auth(Role.BROKER, "broker-13", prefectures=["13"])
    assert client.post(path + "/assignment", headers=other).status_code == 404
    assert client.get(path, headers=other).status_code == 404
    assert client.get(path, headers=auth(Role.EXPERT, "someone-else")).status_code == 404
    assert client.post(path + "/assignment", headers=_broker(auth)).status_code == 200
    # What each reader sees: the SME its own meeting, not the invited experts' list; another SME nothing of it.
    mine = client.get(path, headers=auth(Role.SME, "sme-1")).json()
    assert mine["experts"] == [] and mine["registration_count"] is None and len(mine["meetings"]) == 1
    assert client.get(path, headers=auth(Role.SME, "sme-2")).json()["meetings"] == []
    assert len(client.get(path, headers=auth(Role.EXPERT, "expert-user")).json()["meetings"]) == 1
    assert client.get("/sessions", headers=auth(Role.EXPERT, "expert-user")).json()["total"] == 1
    assert client.get("/sessions", headers=other).json()["total"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"date": "2027-13-01"}, "date"),
        ({"venue_prefecture": "火星県"}, "venue_prefecture"),
        ({"slots": []}, "slots"),
        ({"slots": [{"start": "10:00", "end": "09:00"}]}, "slots.0"),
        ({"slots": [{"start": "25:00", "end": "26:00"}]}, "slots.0.start"),
        ({"slots": [{"start": "10:00", "end": "11:00"}, {"start": "10:30", "end": "11:30"}]}, "slots"),
        ({"experts": []}, "experts"),
        ({"experts": [{"expert_id": "x", "max_meetings": 0}]}, "experts.0.max_meetings"),
        ({"experts": [{"expert_id": "no-such-expert", "max_meetings": 1}]}, "experts"),
        ({"experts": [{"expert_id": "x", "max_meetings": 1, "slots": [7]}]}, "experts"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_days_are_refused_with_the_field(
    client: TestClient, auth: Auth, engine: Engine, change: dict, field: str
) -> None:
    experts = _experts(engine, {})
    response = client.post("/sessions", json=factories.session_body(experts, **change), headers=_broker(auth))
    assert response.status_code == 422, response.text
    assert field in field_names(response)
    assert outbox(engine, Subjects.SESSION_CREATED) == []


def test_experts_who_cannot_come_are_refused(client: TestClient, auth: Auth, engine: Engine) -> None:
    far, inactive = _experts(engine, {"prefectures": ["01"]}, {"active": False})
    for expert_id in (far, inactive):
        response = client.post("/sessions", json=factories.session_body([expert_id]), headers=_broker(auth))
        assert response.status_code == 422 and field_names(response) == {"experts"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topics": [], "self_diagnosis": {}}, "topics"),
        ({"topics": ["no_such_topic"]}, "topics"),
        ({"self_diagnosis": {"26": "no"}}, "self_diagnosis"),
        ({"organization_id": "no-such-organisation"}, "organization_id"),
        ({"delivery": "remote"}, "delivery"),
    ],
)
def test_bad_registrations_are_refused_with_the_field(
    client: TestClient, auth: Auth, engine: Engine, body: dict, field: str
) -> None:
    day = _create(client, auth, _experts(engine, {}))
    response = client.post(
        f"/sessions/{day['id']}/registrations", json=factories.registration_body(**body), headers=auth(Role.SME)
    )
    assert response.status_code == 422, response.text
    assert field_names(response) == {field}


def test_a_self_diagnosis_alone_registers_its_topics(client: TestClient, auth: Auth, engine: Engine) -> None:
    day = _create(client, auth, _experts(engine, {}))
    registration = _register(client, auth, day["id"], "sme-1", topics=[], self_diagnosis={"1": "no", "2": "yes"})
    assert registration["topics"] and registration["explicit_topics"] == []


def test_solving_again_tells_only_those_whose_meetings_moved(client: TestClient, auth: Auth, engine: Engine) -> None:
    a, b = _experts(engine, {"owner_user_id": "user-a"}, {"owner_user_id": "user-b", "topics": {"bec": 3}})
    day = _create(client, auth, [a, b])
    _register(client, auth, day["id"], "sme-1")
    client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth))
    _register(client, auth, day["id"], "sme-2", topics=["bec"])
    plan = client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth)).json()
    assert plan["served"] == 2
    [changed] = outbox(engine, Subjects.SESSION_CHANGED)
    assert set(changed.data["affected_user_ids"]) == {"sme-2", "user-b"}


def test_a_preview_changes_nothing(client: TestClient, auth: Auth, engine: Engine) -> None:
    day = _create(client, auth, _experts(engine, {}))
    _register(client, auth, day["id"], "sme-1")
    plan = client.post(f"/sessions/{day['id']}/assignment", json={"publish": False}, headers=_broker(auth)).json()
    assert plan["published"] is False and len(plan["meetings"]) == 1
    assert client.get(f"/sessions/{day['id']}", headers=_broker(auth)).json()["state"] == "open"
    assert outbox(engine, Subjects.SESSION_PUBLISHED) == []


def test_the_schedule_as_icalendar_and_csv(client: TestClient, auth: Auth, engine: Engine) -> None:
    organization = organization_event(member_user_ids=["sme-1"], name="=株式会社テスト")
    project(engine, organization)
    a, b = _experts(engine, {"owner_user_id": "user-a", "display_name": "安里"}, {"display_name": "比嘉"})
    day = _create(
        client, auth, [a, b], experts=[{"expert_id": a, "max_meetings": 1}, {"expert_id": b, "max_meetings": 1}]
    )
    mine = _register(client, auth, day["id"], "sme-1", organization_id=organization.data["organization_id"])
    _register(client, auth, day["id"], "sme-2")
    client.post(f"/sessions/{day['id']}/assignment", headers=_broker(auth))
    path = f"/sessions/{day['id']}/schedule"

    whole = client.get(path + ".ics", headers=_broker(auth))
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(whole.content).walk("VEVENT")
    assert len(events) == 2
    start = events[0].decoded("dtstart")
    assert start.utcoffset().total_seconds() == 9 * 3600 and str(start.date()) == "2027-01-20"
    # One SME: only its own meeting, whatever it asks for.
    own = Calendar.from_ical(client.get(path + ".ics", headers=auth(Role.SME, "sme-1")).content).walk("VEVENT")
    assert len(own) == 1 and "テスト" in str(own[0]["summary"])
    one_expert = Calendar.from_ical(client.get(path + ".ics", params={"expert_id": b}, headers=_broker(auth)).content)
    assert one_expert.walk("VEVENT") and all(b in str(e["uid"]) for e in one_expert.walk("VEVENT"))
    theirs = Calendar.from_ical(client.get(path + ".ics", headers=auth(Role.EXPERT, "user-a")).content).walk("VEVENT")
    assert len(theirs) == 1 and a in str(theirs[0]["uid"])

    table = client.get(path + ".csv", params={"registration_id": mine["id"]}, headers=_broker(auth))
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert rows[0][0] == "時間帯" and len(rows) == 2 and rows[1][5] == "'=株式会社テスト"
    assert client.get(path + ".csv", headers=auth(Role.SME, "sme-3")).status_code == 200  # an SME sees the day...
    assert (
        len(
            list(
                csv.reader(
                    io.StringIO(client.get(path + ".csv", headers=auth(Role.SME, "sme-3")).content.decode("utf-8-sig"))
                )
            )
        )
        == 1
    )
    assert client.get(path + ".ics", headers=auth(Role.EXPERT, "stranger")).status_code == 404


def test_tsunagu_sessions_solve_an_instance_file(tmp_path) -> None:
    """The CLI solves the API's JSON with the scores given, so another solver can be compared from outside."""
    import json

    from typer.testing import CliRunner

    from launcher.cli import app

    instance = factories.session_body(["e1", "e2"], max_meetings_per_sme=1) | {
        "experts": [
            {"expert_id": "e1", "max_meetings": 2, "topics": ["ransomware"]},
            {"expert_id": "e2", "max_meetings": 1},
        ],
        "registrations": [{"id": f"r{i}", "topics": ["ransomware"]} for i in range(4)],
        "pair_scores": [{"registration_id": f"r{i}", "expert_id": "e1", "score": 0.9 - i / 10} for i in range(4)]
        + [{"registration_id": "r3", "expert_id": "e2", "score": 0.1}],
    }
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(instance), encoding="utf-8")
    result = CliRunner().invoke(app, ["sessions", "solve", str(path)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["status"] == "optimal" and answer["served"] == 3
    assert answer["objective"] == pytest.approx(0.9 + 0.8 + 0.1)  # r3 goes to e2 so three are served
    assert len(answer["unserved"]) == 1 and "件" in answer["unserved"][0]["reason_ja"]
