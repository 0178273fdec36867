"""The brokering state machines on their own: who may take which transition from which state, and the
bilingual words of a refusal (the service turns them into the same 403/409)."""

from __future__ import annotations

import pytest

from services.matching import lifecycle
from services.matching.lifecycle import Actor, TransitionRefused


def test_the_happy_path_of_a_proposal() -> None:
    accept = lifecycle.check(lifecycle.PROPOSAL_TRANSITIONS, "accept", "proposed", Actor.EXPERT)
    confirm = lifecycle.check(lifecycle.PROPOSAL_TRANSITIONS, "confirm", accept.target, Actor.SME)
    assert (accept.target, confirm.target, confirm.event) == ("accepted", "confirmed", "confirmed")


@pytest.mark.parametrize(
    ("name", "state", "actor"),
    [("accept", "proposed", Actor.SME), ("confirm", "accepted", Actor.EXPERT), ("withdraw", "proposed", Actor.SME)],
)
def test_the_wrong_party_is_refused_with_403(name: str, state: str, actor: Actor) -> None:
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.check(lifecycle.PROPOSAL_TRANSITIONS, name, state, actor)
    assert refused.value.status == 403 and "権限" in refused.value.ja


def test_a_move_from_the_wrong_state_is_409_in_both_languages() -> None:
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.check(lifecycle.PROPOSAL_TRANSITIONS, "confirm", "proposed", Actor.SME)
    assert refused.value.status == 409 and refused.value.code == "invalid_transition"
    assert "提案中" in refused.value.ja and "専門家が承諾" in refused.value.ja
    assert "proposed" in refused.value.en


def test_the_system_takes_any_transition_and_decline_needs_a_reason() -> None:
    assert lifecycle.check(lifecycle.PROPOSAL_TRANSITIONS, "expire", "proposed", Actor.SYSTEM).target == "expired"
    assert lifecycle.PROPOSAL_TRANSITIONS["decline"].needs_reason
    assert lifecycle.ENGAGEMENT_TRANSITIONS["cancel"].needs_reason
    assert lifecycle.check(lifecycle.REQUEST_TRANSITIONS, "reopen", "matched", Actor.BROKER).target == "ranked"
    assert lifecycle.stale().status == 409 and lifecycle.stale().code == "conflict"
