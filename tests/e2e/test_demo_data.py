"""The demo data `make run` loads, through the public API, on the session's system."""

from __future__ import annotations

import pytest

from tests.conftest import Api, wait_until
from tsunagu.demo import DEMO_PASSWORD, DemoLoader
from tsunagu.runner import System

pytestmark = pytest.mark.e2e


def test_demo_data_loads_and_brokers_see_ranked_requests_of_their_prefectures(system: System, api: Api) -> None:
    summary = DemoLoader(system.url("gateway"), system.config.data_dir, system.database_url("gateway")).load(experts=60, requests=12)
    assert summary == {"experts": 60, "organizations": 6, "requests": 12}
    accounts = (system.config.data_dir / "demo-accounts.txt").read_text(encoding="utf-8")
    assert "broker.tokyo@tsunagu.example" in accounts and DEMO_PASSWORD in accounts

    token = api.http.post("/api/v1/auth/token", json={"email": "sme001@tsunagu.example", "password": DEMO_PASSWORD}).json()
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
