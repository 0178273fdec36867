"""A profile change becomes searchable, through real processes: the expert changes their entry at the gateway,
profiles commits it with its outbox row, the relay publishes ``profiles.expert.published`` to JetStream, the
search service's consumer indexes it, and the public search through the gateway finds the new text, filter
and facet, and no longer the old ones. How fast is bench/bench_search_delay.py's business (aim: under 1 s);
here the wait is generous, so a busy machine cannot fail what is a question of correctness."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, wait_searchable
from tests.factories import unique_name

pytestmark = pytest.mark.e2e


def _search(api: Api, **params) -> dict:
    response = api.http.get("/api/v1/search/experts", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_profile_change_becomes_searchable_and_the_old_text_goes(api: Api) -> None:
    expert = api.register("expert")
    name = unique_name()
    old_word = f"旧記述{uuid.uuid4().hex[:8]}"
    new_word = f"新記述{uuid.uuid4().hex[:8]}"
    profile = create_expert(api, expert, name=name, bio=f"{old_word}を支援します", prefectures=["47"])
    wait_searchable(api, old_word, profile["id"])

    changed = api.http.patch(
        f"/api/v1/experts/{profile['id']}",
        headers=expert,
        json={"bio": f"{new_word}を支援します", "prefectures": ["01"], "skills": ["Kubernetes"]},
    )
    assert changed.status_code == 200, changed.text

    hit = wait_searchable(api, new_word, profile["id"], timeout=60)
    assert new_word in hit["bio"] and hit["prefectures"] == ["01"]
    assert "<mark>" in hit["highlights"]["bio"] and new_word in hit["highlights"]["bio"]
    # The whole document was replaced: the old text and the old prefecture no longer find it.
    assert _search(api, q=old_word)["total"] == 0
    assert profile["id"] not in {h["id"] for h in _search(api, q=name, prefecture="47")["items"]}
    in_hokkaido = _search(api, q=name, prefecture="01", facet=["prefecture", "skill"])
    assert [h["id"] for h in in_hokkaido["items"]] == [profile["id"]]
    facets = {f: {v["value"]: v["count"] for v in values} for f, values in in_hokkaido["facets"].items()}
    assert facets["prefecture"] == {"01": 1} and facets["skill"].get("kubernetes") == 1  # skills are kept in lower case

    # Hiding the biography takes it out of the index too (only public fields are searchable).
    hidden = api.http.put(
        f"/api/v1/experts/{profile['id']}/visibility", headers=expert, json={"visibility": {"bio": "private"}}
    )
    assert hidden.status_code == 200, hidden.text
    wait_until(lambda: _search(api, q=new_word)["total"] == 0, timeout=60, message="the hidden bio leaving the index")
    assert [h["id"] for h in _search(api, q=name)["items"]] == [profile["id"]]
