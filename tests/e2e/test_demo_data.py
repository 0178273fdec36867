"""The demo data `make run` loads, through the public API, on the session's system."""

from __future__ import annotations

import pytest

from launcher.demo import DEMO_PASSWORD, DemoLoader
from launcher.runner import System
from tests.conftest import Api, wait_until

pytestmark = pytest.mark.e2e


def test_demo_data_loads_and_brokers_see_ranked_requests_of_their_prefectures(system: System, api: Api) -> None:
    summary = DemoLoader(system.url("gateway"), system.config.data_dir, system.database_url("gateway")).load(
        experts=60, requests=12
    )
    assert summary == {"experts": 60, "organizations": 6, "requests": 12}
    accounts = (system.config.data_dir / "demo-accounts.txt").read_text(encoding="utf-8")
    assert "broker.tokyo@tsunagu.example" in accounts and DEMO_PASSWORD in accounts

    token = api.http.post(
        "/api/v1/auth/token", json={"email": "sme001@tsunagu.example", "password": DEMO_PASSWORD}
    ).json()
    api.http.cookies.clear()
    sme = {"authorization": f"Bearer {token['access_token']}"}
    mine = api.http.get("/api/v1/requests", headers=sme).json()
    assert mine["total"] == 2 and all(item["organization_id"] for item in mine["items"])

    def ranked() -> bool:
        items = api.http.get("/api/v1/requests", headers=sme).json()["items"]
        return all(item["status"] == "ranked" for item in items)

    wait_until(ranked, timeout=60, message="the demo requests ranked")
    ranking = api.http.get(f"/api/v1/requests/{mine['items'][0]['id']}/ranking", headers=sme).json()
    assert ranking["status"] == "ranked" and ranking["entries"][0]["reason_ja"]

    # Issue 11: a 相談会 solved and published (the demo SME has a meeting and was told), a hub project with a
    # proposed team the hub staff see.
    def signed_in(email: str) -> dict[str, str]:
        response = api.http.post("/api/v1/auth/token", json={"email": email, "password": DEMO_PASSWORD})
        api.http.cookies.clear()
        return {"authorization": f"Bearer {response.json()['access_token']}"}

    demo_sme, broker, hub = (
        signed_in(email) for email in ("sme@tsunagu.example", "broker.tokyo@tsunagu.example", "hub@tsunagu.example")
    )
    [day] = [
        d
        for d in api.http.get("/api/v1/sessions", headers=broker).json()["items"]
        if d["title"] == "東京 中小企業サイバーセキュリティ相談会"
    ]
    assert day["state"] == "published" and day["registration_count"] == 5 and len(day["experts"]) >= 2
    plan = api.http.get(f"/api/v1/sessions/{day['id']}/assignment", headers=broker).json()
    assert plan["status"] == "optimal" and plan["served"] == 4 and len(plan["unserved"]) == 1
    assert plan["unserved"][0]["reason_ja"]
    mine = api.http.get(f"/api/v1/sessions/{day['id']}", headers=demo_sme).json()
    assert mine["my_registration_id"] and len(mine["meetings"]) == 1

    def told() -> bool:
        items = api.http.get("/api/v1/notifications", headers=demo_sme, params={"limit": 100}).json()["items"]
        return any(item["kind"] == "matching.session.published" for item in items)

    wait_until(told, timeout=60, message="the demo SME told of its meeting")
    [project] = [
        p
        for p in api.http.get("/api/v1/projects", headers=hub).json()["items"]
        if p["title"].startswith("受注データで")
    ]
    assert project["state"] == "team_proposed" and len(project["members"]) == 4 and project["uncovered_ja"] == []
    assert "learner@tsunagu.example" in (system.config.data_dir / "demo-accounts.txt").read_text(encoding="utf-8")
