"""Issue 2's thin path through real processes: expert profile -> events -> search index and matching
projection -> SME request -> scorer worker -> ranking with reasons, all through the gateway."""

from __future__ import annotations

import httpx
import pytest

from launcher.runner import SERVICES, System
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, in_projection, submit_request, wait_ranked, wait_searchable
from tests.factories import request_body, unique_name

pytestmark = pytest.mark.e2e


def test_every_service_is_alive_and_ready(system: System) -> None:
    for name in SERVICES:
        assert httpx.get(system.url(name) + "/healthz").json()["status"] == "ok"
        ready = httpx.get(system.url(name) + "/readyz")
        assert ready.status_code == 200, ready.text
        assert all(ready.json()["checks"].values())


def test_expert_profile_to_ranked_request(api: Api, admin: dict[str, str]) -> None:
    expert = api.register("expert", name="沖縄 花子")
    name = unique_name()
    # A skill nobody else has makes this expert the clear first, whatever other tests created before.
    skill = f"検証スキル{name}"
    profile = create_expert(api, expert, name=name, prefectures=["47"], skills=["AWS", skill])

    hit = wait_searchable(api, name, profile["id"])
    assert hit["name"] == name and hit["prefectures"] == ["47"]

    # A second expert far away, remote only, covering one of the two topics: must rank below.
    create_expert(
        api,
        admin,
        name=unique_name(),
        prefectures=["01"],
        onsite=False,
        strengths=[{"topic": "ransomware", "depth": 1}],
    )

    wait_until(
        lambda: in_projection(api.system, profile["id"]), timeout=60, message="the expert in matching's projection"
    )
    sme = api.register("sme", name="株式会社 那覇精密")
    request = submit_request(api, sme, prefecture="沖縄県", skills=[skill])
    assert request["prefecture"] == "47" and request["status"] == "submitted"

    ranking = wait_ranked(api, sme, request["id"])
    top = ranking["entries"][0]
    assert top["expert_id"] == profile["id"]
    assert top["rank"] == 1
    assert top["reason_ja"].startswith("同じ都道府県で対応")
    assert "相談テーマ2件中2件が得意分野" in top["reason_ja"] and "求めるスキル1件が一致" in top["reason_ja"]
    assert ranking["weights_version"] == top["weights_version"]
    # The SME reads the factors that rest on what the expert made public; the broker-level ones (freshness,
    # outcomes, fairness of exposure) are summed as "undisclosed" (issue 8: reasons per viewer).
    assert set(top["contributions"]) == {"region", "topic", "skill", "industry", "undisclosed"}
    scores = [entry["score"] for entry in ranking["entries"]]
    assert scores == sorted(scores, reverse=True)

    detail = api.http.get(f"/api/v1/requests/{request['id']}", headers=sme).json()
    assert detail["status"] == "ranked"


def test_only_the_owner_and_the_prefectures_brokers_see_a_request(api: Api) -> None:
    sme = api.register("sme")
    request = submit_request(api, sme, prefecture="47")
    other_sme = api.register("sme")
    okinawa_broker = api.account("broker", prefectures=["47"])
    tokyo_broker = api.account("broker", prefectures=["13"])
    expert = api.register("expert")
    path = f"/api/v1/requests/{request['id']}"

    assert api.http.get(path, headers=sme).status_code == 200
    assert api.http.get(path, headers=okinawa_broker).status_code == 200
    for outsider in (other_sme, tokyo_broker, expert):
        assert api.http.get(path, headers=outsider).status_code == 404
        assert api.http.get(path + "/ranking", headers=outsider).status_code == 404
    assert api.http.get(path).status_code == 401

    mine = api.http.get("/api/v1/requests", headers=sme).json()
    assert [item["id"] for item in mine["items"]] == [request["id"]]
    assert all(
        item["prefecture"] == "13" for item in api.http.get("/api/v1/requests", headers=tokyo_broker).json()["items"]
    )


def test_the_web_ui_finds_an_expert_in_japanese(api: Api, admin: dict[str, str]) -> None:
    name = unique_name()
    profile = create_expert(api, admin, name=name, prefectures=["40"])
    wait_searchable(api, name, profile["id"])
    page = api.http.get("/", params={"q": name})
    assert page.status_code == 200
    assert "検索結果" in page.text and name in page.text and "福岡県" in page.text


def test_one_request_id_follows_the_request_through_every_process(system: System, api: Api) -> None:
    import json
    import uuid

    sme = api.register("sme")
    trace = f"trace-{uuid.uuid4().hex[:12]}"
    response = api.http.post("/api/v1/requests", headers={**sme, "x-request-id": trace}, json=request_body())
    assert response.status_code == 201 and response.headers["x-request-id"] == trace
    wait_ranked(api, sme, response.json()["id"])

    def lines(process: str) -> list[dict]:
        path = system.config.data_dir / f"{process}.log"
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return [record for record in records if record.get("request_id") == trace]

    gateway = lines("gateway")
    assert any(r["message"] == "request" and r["path"] == "/api/v1/requests" and r["status"] == 201 for r in gateway)
    assert any(r["message"] == "request" and r["path"] == "/requests" for r in lines("matching"))
    ranked = [r for process in ("scorer-1", "scorer-2") for r in lines(process) if r["message"] == "request ranked"]
    assert len(ranked) == 1 and ranked[0]["event_id"] and ranked[0]["request_id_ranked"] == response.json()["id"]
