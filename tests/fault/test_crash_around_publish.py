"""kill -9 a service on either side of its publish, through real processes (issue 13, faults).

The transactional outbox has two windows where a producing process can die:

1. after its transaction commits and before the relay publishes the event. The test lands there without a
   hook in the product: with the nats-server killed, the relays cannot publish, so every commit (a request
   submitted, a proposal, an expert entry) waits in an outbox; then matching and profiles are killed with
   SIGKILL, the nats-server and the services start again, and the relays publish on start. Each effect
   happens once: one ranking of the request, one notification (and one mail) of the proposal to the expert,
   the expert in search.
2. after the publish was acknowledged and before the relay marks the row published. The nats-server is
   frozen (SIGSTOP) while a request is submitted, so the relay's publish waits; matching's outbox is locked
   for writes (a slow database), the server is let go, the event is stored (seen in the stream) and the
   relay's mark waits on the lock; then matching is killed. On restart the relay publishes the row again;
   JetStream's duplicate window drops it (the stream still holds one message) and the request has one
   ranking.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from launcher.runner import System
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, in_projection, submit_request, wait_ranked, wait_searchable
from tests.factories import unique_name
from tests.fault.conftest import (
    consumer_idle,
    freeze_nats,
    kill9,
    kill9_nats,
    notifications_by_event,
    outbox_rows,
    outbox_writes_blocked,
    pending_outbox,
    rankings_by_event,
    restart_service,
    stream_messages,
    submitted_event_ids,
    thaw_nats,
)
from tsunagu.events import Subjects
from tsunagu.mailsink import read_mails


def _me(api: Api, headers: dict[str, str]) -> dict:
    response = api.http.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_killed_after_the_commit_before_the_publish_every_event_still_arrives_once(
    private_system: System, private_api: Api
) -> None:
    system, api = private_system, private_api
    admin = api.account("admin")
    expert = api.register("expert", name="東京 専門家")
    profile = create_expert(api, expert, name=unique_name(), prefectures=["13"], capacity=5)
    wait_until(lambda: in_projection(system, profile["id"]), timeout=60, message="the expert in matching")
    broker = api.account("broker", prefectures=["13"])
    sme = api.register("sme")
    title = f"ランサムウェア対策 {unique_name()}"
    first = submit_request(api, sme, prefecture="13", title=title)
    wait_ranked(api, sme, first["id"])

    kill9_nats(system)  # from here every commit waits in its service's outbox
    second = submit_request(api, sme, prefecture="13")
    proposed = api.http.post(
        f"/api/v1/requests/{first['id']}/proposals",
        headers=broker,
        json={"expert_id": profile["id"], "message": "ご検討ください。"},
    )
    assert proposed.status_code == 201, proposed.text
    newcomer_name = unique_name()
    newcomer = create_expert(api, admin, name=newcomer_name, prefectures=["13"])
    # In the window: committed (the API answered) and not published.
    assert pending_outbox(system, "matching") >= 2
    assert pending_outbox(system, "profiles") >= 1

    assert kill9(system, "matching") == -9
    assert kill9(system, "profiles") == -9
    system.start_nats()  # the same server, port and JetStream store
    restart_service(system, "matching")
    restart_service(system, "profiles")

    # Every event arrives: the request is ranked, the expert is told, the newcomer is found...
    wait_ranked(api, sme, second["id"], timeout=60)
    wait_searchable(api, newcomer_name, newcomer["id"], timeout=60)
    expert_id = _me(api, expert)["id"]
    proposal_events = [row.event_id for row in outbox_rows(system, "matching", Subjects.PROPOSAL_PROPOSED)]
    assert len(proposal_events) == 1
    wait_until(
        lambda: notifications_by_event(system, Subjects.PROPOSAL_PROPOSED),
        timeout=60,
        message="the expert's notification of the proposal",
    )
    wait_until(lambda: pending_outbox(system, "matching") == 0, timeout=30, message="matching's outbox drained")
    wait_until(lambda: pending_outbox(system, "profiles") == 0, timeout=30, message="profiles' outbox drained")
    for durable in ("scorer", "gateway-notifications"):
        wait_until(lambda d=durable: consumer_idle(system, "MATCHING", d), timeout=30, message=f"{durable} idle")

    # ...and once.
    rankings = rankings_by_event(system)
    submitted = submitted_event_ids(system)
    assert rankings[submitted[second["id"]]] == 1 and rankings[submitted[first["id"]]] == 1
    told = notifications_by_event(system, Subjects.PROPOSAL_PROPOSED)  # the expert and the SME, once each
    assert told[(proposal_events[0], expert_id)] == 1 and set(told.values()) == {1}
    assert {event_id for event_id, _ in told} == {proposal_events[0]}

    address = _me(api, expert)["email"]

    def mails_of_the_proposal() -> list:
        return [
            mail
            for mail in read_mails(system.maildir)
            if mail["To"] == address and "提案が届きました" in str(mail["Subject"])
        ]

    wait_until(mails_of_the_proposal, timeout=60, message="the proposal's mail to the expert")
    time.sleep(1)  # a second mail, if there were one, would be sent in the same round
    assert len(mails_of_the_proposal()) == 1


def test_killed_after_the_publish_ack_before_the_mark_the_event_counts_once(
    private_system: System, private_api: Api
) -> None:
    system, api = private_system, private_api
    sme = api.register("sme")
    wait_ranked(api, sme, submit_request(api, sme, prefecture="13")["id"])
    stored_before = stream_messages(system, "MATCHING", Subjects.REQUEST_SUBMITTED)

    with ExitStack() as stack:
        freeze_nats(system)  # the relay's publish waits for an ack that cannot come yet
        try:
            request = submit_request(api, sme, prefecture="13")
            stack.enter_context(outbox_writes_blocked(system, "matching"))
        finally:
            thaw_nats(system)
        # The server stores and acknowledges the event; the relay's mark waits on the lock.
        wait_until(
            lambda: stream_messages(system, "MATCHING", Subjects.REQUEST_SUBMITTED) == stored_before + 1,
            timeout=30,
            message="the submitted event stored in JetStream",
        )
        row = next(r for r in outbox_rows(system, "matching", Subjects.REQUEST_SUBMITTED) if request["id"] in r.payload)
        assert row.published_at is None  # acknowledged, not marked: the window
        assert kill9(system, "matching") == -9
    restart_service(system, "matching")

    def marked() -> bool:
        again = next(r for r in outbox_rows(system, "matching", Subjects.REQUEST_SUBMITTED) if r.seq == row.seq)
        return again.published_at is not None

    # The restarted relay published the row again (only a publish ack marks it)...
    wait_until(marked, timeout=60, message="the restarted relay publishing the row again")
    wait_ranked(api, sme, request["id"], timeout=60)
    wait_until(lambda: consumer_idle(system, "MATCHING", "scorer"), timeout=30, message="the scorers idle")
    # ...and the server's duplicate window dropped it: one message, one ranking.
    assert stream_messages(system, "MATCHING", Subjects.REQUEST_SUBMITTED) == stored_before + 1
    assert rankings_by_event(system)[row.event_id] == 1
