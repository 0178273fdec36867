"""Re-ranking in the running system (issue 8): an expert changes through the profiles API, and the open request
that change concerns gets a new ranking (through profiles' event, matching's projection, the outbox and a scorer
worker), with when it was made; a request the change cannot touch does not get the expert."""

from __future__ import annotations

import pytest

from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, in_projection, submit_request, wait_ranked
from tests.factories import unique_name

pytestmark = pytest.mark.e2e


def test_an_expert_change_reranks_the_open_requests_it_concerns(api: Api, admin: dict[str, str]) -> None:
    skill = f"再評価スキル{unique_name()}"  # nobody else has it: the request ranks this expert or nobody
    expert = api.register("expert", name="沖縄 再評価")
    profile = create_expert(api, expert, name=unique_name(), prefectures=["47"], skills=["AWS"])
    wait_until(lambda: in_projection(api.system, profile["id"]), timeout=120, message="the expert in matching")

    sme = api.register("sme", name="株式会社 再評価")
    concerned = submit_request(api, sme, prefecture="沖縄県", delivery="onsite", skills=[skill])
    untouched = submit_request(api, sme, prefecture="北海道", delivery="onsite", skills=["北海道だけの技能"])
    first = wait_ranked(api, sme, concerned["id"])
    before_untouched = wait_ranked(api, sme, untouched["id"])
    assert all(e["expert_id"] != profile["id"] for e in before_untouched["entries"])
    assert not any("求めるスキル1件が一致" in e["reason_ja"] for e in first["entries"])  # nobody has the skill yet

    # The expert adds the rare skill: the Okinawa request must rank them first, without being resubmitted.
    changed = api.http.patch(f"/api/v1/experts/{profile['id']}", headers=expert, json={"skills": ["AWS", skill]})
    assert changed.status_code == 200, changed.text

    # Other tests share this system: their experts' changes may re-rank the request too, before this change has
    # reached matching. So wait for a new ranking that has learnt of this change, not merely for any new one.
    def reranked() -> dict | None:
        ranking = api.http.get(f"/api/v1/requests/{concerned['id']}/ranking", headers=sme).json()
        if ranking["ranking_id"] == first["ranking_id"] or not ranking["entries"]:
            return None
        top = ranking["entries"][0]
        return ranking if top["expert_id"] == profile["id"] and "求めるスキル1件が一致" in top["reason_ja"] else None

    second = wait_until(reranked, timeout=120, message="a new ranking of the concerned request with the expert first")
    assert second["computed_at"] > first["computed_at"]
    assert "求めるスキル1件が一致" in second["entries"][0]["reason_ja"]
    # The Hokkaido on-site request was not concerned (which requests a change marks, and which it leaves alone,
    # is tests/matching/test_rerank.py's: here other tests' experts may re-rank it at any time): still without them.
    after_untouched = api.http.get(f"/api/v1/requests/{untouched['id']}/ranking", headers=sme).json()
    assert all(e["expert_id"] != profile["id"] for e in after_untouched["entries"])
