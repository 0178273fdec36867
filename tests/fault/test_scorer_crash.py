"""kill -9 the scorer workers in the middle of a stream of requests (issue 13, faults).

200 requests are submitted through the gateway from eight threads while the two scorer workers rank them.
One worker is killed with SIGKILL once some are ranked, the other a little later, so for a while nobody ranks
and the events a worker had fetched but not acknowledged are left with the server. Both start again; the
server hands the unacknowledged events out again after the ack wait (5 s in the tests), and each worker
claims an event id in the same transaction as its ranking, so every request is ranked, and ranked once.
"""

from __future__ import annotations

from launcher.runner import System
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, in_projection
from tests.factories import unique_name
from tests.fault.conftest import (
    Stopwatch,
    Submitter,
    consumer_idle,
    dead_letters,
    kill9,
    rankings_by_event,
    record_figures,
    submitted_event_ids,
    unranked,
)

REQUESTS = 200


def test_scorers_killed_mid_stream_every_request_is_ranked_once(private_system: System, private_api: Api) -> None:
    system, api = private_system, private_api
    admin = api.account("admin")
    experts = [create_expert(api, admin, name=unique_name(), prefectures=[p]) for p in ("13", "14", "27")]
    for expert in experts:
        wait_until(lambda e=expert: in_projection(system, e["id"]), timeout=60, message="the experts in matching")
    smes = [api.register("sme") for _ in range(4)]

    submitter = Submitter(system, smes, total=REQUESTS, prefectures=("13", "14", "27")).start()
    wait_until(lambda: len(rankings_by_event(system)) >= 30, timeout=120, interval=0.2, message="30 rankings")
    assert kill9(system, "scorer-1") == -9
    ranked_at_first_kill = len(rankings_by_event(system))
    wait_until(
        lambda: len(rankings_by_event(system)) >= ranked_at_first_kill + 30,
        timeout=120,
        interval=0.2,
        message="the other worker ranking alone",
    )
    assert kill9(system, "scorer-2") == -9
    ranked_with_none_left = len(rankings_by_event(system))
    submitter.join(timeout=240)
    assert submitter.failures == []
    assert len(submitter.accepted) == REQUESTS

    restarted = Stopwatch()
    system.start_scorer(1)
    system.start_scorer(2)
    wait_until(lambda: not unranked(system, submitter.accepted), timeout=120, interval=0.5, message="all ranked")
    caught_up = restarted.seconds()
    wait_until(lambda: consumer_idle(system, "MATCHING", "scorer"), timeout=60, message="the scorers idle")

    submitted = submitted_event_ids(system)
    rankings = rankings_by_event(system)
    assert [rankings.get(submitted[request_id], 0) for request_id in submitter.accepted] == [1] * REQUESTS
    assert [record for record in dead_letters(system) if record["consumer"] == "scorer"] == []
    record_figures(
        "scorer_killed_mid_stream",
        {
            "requests": REQUESTS,
            "ranked_when_first_worker_killed": ranked_at_first_kill,
            "ranked_when_second_worker_killed": ranked_with_none_left,
            "submitted_per_second": submitter.per_second(),
            "seconds_from_restart_to_all_ranked": caught_up,
            "lost": 0,
            "duplicated": 0,
        },
    )
