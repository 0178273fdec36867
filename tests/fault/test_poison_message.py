"""A poison message (issue 13, faults): an event the scorer fails on every time it is delivered.

How the poison is made, without a hook in the product: the event is a real one (an SME submits a request
through the gateway) and the scorer's own database refuses what handling it writes. Before the submission, a
trigger is added to matching's database that rejects a ranking of any request whose title carries a marker, as
a constraint added by an operator, or data the code did not expect, would. The scorer's transaction (claim the
event, mark the request ranked, write the ranking and its event) fails on every delivery and is rolled back;
this is not a failure the kernel calls permanent, so it is redelivered with back-off, and after
TSUNAGU_MAX_DELIVERIES (3 in the tests) it is dead-lettered.

Then: the consumer went on (requests submitted after the poison are ranked, one of them before the poison was
even dead-lettered); "the fix" is dropping the trigger; an admin finds the dead letter and replays it through
the admin API; the request is ranked exactly once, and a second replay (an admin clicking twice) changes
nothing. Works on SQLite and PostgreSQL (the trigger is written in each dialect).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import make_url, text
from sqlmodel import Session, select

from launcher.runner import System
from services.matching.models import Ranking
from tests.conftest import Api, wait_until
from tests.e2e.helpers import submit_request, wait_ranked
from tests.fault.conftest import Stopwatch, consumer_idle, rankings_by_event, record_figures, submitted_event_ids
from tsunagu.db import make_engine
from tsunagu.events import Subjects

MARKER = "【毒】"

_SQLITE_TRIGGER = f"""
CREATE TRIGGER poison_ranking BEFORE INSERT ON rankings
WHEN (SELECT title FROM requests WHERE id = NEW.request_id) LIKE '%{MARKER}%'
BEGIN SELECT RAISE(ABORT, 'ranking refused by the poison trigger'); END
"""
_POSTGRES_TRIGGER = [
    f"""
CREATE FUNCTION poison_ranking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT title FROM requests WHERE id = NEW.request_id) LIKE '%{MARKER}%' THEN
    RAISE EXCEPTION 'ranking refused by the poison trigger';
  END IF;
  RETURN NEW;
END $$
""",
    "CREATE TRIGGER poison_ranking BEFORE INSERT ON rankings FOR EACH ROW EXECUTE FUNCTION poison_ranking()",
]


def _execute(system: System, statements: list[str]) -> None:
    engine = make_engine(system.database_url("matching"))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def add_poison_trigger(system: System) -> None:
    sqlite = make_url(system.database_url("matching")).get_backend_name() == "sqlite"
    _execute(system, [_SQLITE_TRIGGER] if sqlite else _POSTGRES_TRIGGER)


def drop_poison_trigger(system: System) -> None:
    sqlite = make_url(system.database_url("matching")).get_backend_name() == "sqlite"
    _execute(
        system,
        ["DROP TRIGGER poison_ranking"]
        if sqlite
        else ["DROP TRIGGER poison_ranking ON rankings", "DROP FUNCTION poison_ranking()"],
    )


def _ranked_at(system: System, request_id: str) -> datetime | None:
    engine = make_engine(system.database_url("matching"))
    try:
        with Session(engine) as session:
            ranking = session.exec(select(Ranking).where(Ranking.request_id == request_id)).first()
    finally:
        engine.dispose()
    if ranking is None:
        return None
    at = ranking.computed_at
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def test_a_poison_message_is_dead_lettered_the_consumer_goes_on_and_a_replay_after_the_fix_applies_it_once(
    private_system: System, private_api: Api
) -> None:
    system, api = private_system, private_api
    admin = api.account("admin")
    sme = api.register("sme")
    add_poison_trigger(system)

    clock = Stopwatch()
    poison = submit_request(api, sme, title=f"{MARKER}ランキングできない相談", prefecture="13")
    later = [submit_request(api, sme, title=f"後続の相談 {n}", prefecture="13") for n in range(3)]
    for request in later:
        wait_ranked(api, sme, request["id"], timeout=60)  # the scorers went on past the poison

    def dead_letter() -> dict | None:
        response = api.http.get("/api/v1/admin/dead-letters", headers=admin)
        assert response.status_code == 200, response.text
        return next(
            (
                item
                for item in response.json()["items"]
                if item["consumer"] == "scorer" and poison["id"] in item["original_payload"]
            ),
            None,
        )

    letter = wait_until(dead_letter, timeout=60, message="the poison's dead letter")
    dead_lettered_after = clock.seconds()
    assert letter["original_subject"] == Subjects.REQUEST_SUBMITTED
    assert letter["deliveries"] == 3 and letter["error"].startswith("failed 3 times")  # after the retries
    assert "poison trigger" in letter["error"]
    failed_at = datetime.fromisoformat(letter["failed_at"])
    ranked_times = [_ranked_at(system, request["id"]) for request in later]
    assert min(t for t in ranked_times if t) < failed_at  # not held back while the poison was retried
    # Dead-lettered means handled: nothing of it waits on the scorers' durable, and nothing was half-written.
    wait_until(lambda: consumer_idle(system, "MATCHING", "scorer"), timeout=30, message="the scorers idle")
    event_id = submitted_event_ids(system)[poison["id"]]
    assert rankings_by_event(system).get(event_id) is None
    read = api.http.get(f"/api/v1/requests/{poison['id']}", headers=sme).json()
    assert read["status"] == "submitted"

    # The fix: the trigger goes. Then an admin replays the dead letter through the API.
    drop_poison_trigger(system)
    replayed = api.http.post(f"/api/v1/admin/dead-letters/{letter['sequence']}/replay", headers=admin)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replayed_to"] == Subjects.REQUEST_SUBMITTED
    ranking = wait_ranked(api, sme, poison["id"], timeout=60)
    assert ranking["status"] == "ranked"
    assert rankings_by_event(system)[event_id] == 1

    # Replayed again (an admin clicking twice): nothing changes (JetStream's duplicate window drops the same
    # replay within two minutes; after that the scorer's processed-event claim would).
    again = api.http.post(f"/api/v1/admin/dead-letters/{letter['sequence']}/replay", headers=admin)
    assert again.status_code == 200
    probe = submit_request(api, sme, title="再送後の相談", prefecture="13")
    wait_ranked(api, sme, probe["id"], timeout=60)
    wait_until(lambda: consumer_idle(system, "MATCHING", "scorer"), timeout=30, message="the scorers idle")
    rankings = rankings_by_event(system)
    assert rankings[event_id] == 1
    assert all(rankings.get(event) == 1 for event in submitted_event_ids(system).values())
    letters = api.http.get("/api/v1/admin/dead-letters", headers=admin).json()["items"]
    assert [item["sequence"] for item in letters if poison["id"] in item["original_payload"]] == [letter["sequence"]]
    record_figures(
        "poison_message",
        {
            "deliveries_before_dead_letter": letter["deliveries"],
            "seconds_from_submission_to_dead_letter_seen": dead_lettered_after,
            "later_requests_ranked_meanwhile": len(later),
            "rankings_of_the_poison_after_two_replays": rankings[event_id],
        },
    )
