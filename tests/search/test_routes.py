"""The search API over HTTP (services/search/routes/): TestClient on the real app, with the index filled
directly (the consumer has tests of its own). Bad filters through the gateway: tests/e2e/test_bad_input.py."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.search.engine import SearchEngine
from tests import factories
from tsunagu.auth import Role
from tsunagu.contracts import ExpertPublicV1


def indexed(index: SearchEngine, **overrides) -> dict:
    document = ExpertPublicV1(**factories.expert_published_data(**overrides)).model_dump(mode="json")
    index.upsert([document])
    return document


def test_a_page_of_hits_is_the_public_view_as_indexed(client: TestClient, index: SearchEngine) -> None:
    document = indexed(index, name="検索 一郎", bio="札幌でフォレンジック")
    response = client.get("/search/experts", params={"q": "ﾌｫﾚﾝｼﾞｯｸ"})
    assert response.status_code == 200, response.text
    page = response.json()
    (hit,) = page["items"]
    assert hit.pop("highlights") == {"bio": "札幌で<mark>フォレンジック</mark>"}
    assert page == {"items": [document], "total": 1, "limit": 20, "offset": 0, "facets": {}}


def test_filters_take_prefecture_names_and_topics(client: TestClient, index: SearchEngine) -> None:
    tokyo = indexed(index, prefectures=["13"], topics=["ransomware"], remote=True)
    indexed(index, prefectures=["27"], topics=["ransomware"])
    indexed(index, prefectures=["13"], topics=["cloud_security"], kind="dx_talent")
    params = {"prefecture": ["東京都", "01"], "topic": "ransomware", "remote": "true", "kind": "sekisupe"}
    page = client.get("/search/experts", params=params).json()
    assert [hit["id"] for hit in page["items"]] == [tokyo["id"]]


def test_paging_echoes_the_window_and_counts_every_match(client: TestClient, index: SearchEngine) -> None:
    for _ in range(3):
        indexed(index)
    page = client.get("/search/experts", params={"limit": 2, "offset": 2}).json()
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (1, 3, 2, 2)


def test_unknown_topics_and_kinds_are_named_in_the_error(client: TestClient) -> None:
    response = client.get("/search/experts", params={"topic": ["ransomware", "no_such_topic"], "kind": "robot"})
    assert response.status_code == 422
    fields = {field["field"]: field for field in response.json()["error"]["fields"]}
    assert set(fields) == {"topic", "kind"}
    assert "no_such_topic" in fields["topic"]["message_en"]


def test_the_openapi_says_what_a_search_returns(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/search/experts"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("SearchPage_ExpertHit_")
    assert {p["name"] for p in operation["parameters"]} == {
        "q", "prefecture", "region", "topic", "skill", "role", "kind", "remote", "onsite", "sort", "highlight",
        "facet", "limit", "offset",
    }  # fmt: skip
    for path in ("/search/requests", "/search/projects", "/search/suggest"):
        assert "200" in client.get("/openapi.json").json()["paths"][path]["get"]["responses"]


# -- facets, sort, suggestions --------------------------------------------------------------------------------


def test_facets_come_with_labels(client: TestClient, index: SearchEngine) -> None:
    indexed(index, prefectures=["13", "14"], topics=["ransomware"], dss_roles=["cybersecurity"])
    indexed(index, prefectures=["13"], topics=["rpa"], kind="dx_talent")
    page = client.get("/search/experts", params={"facet": ["prefecture", "region", "topic", "kind"]}).json()
    assert page["facets"]["prefecture"] == [
        {"value": "13", "count": 2, "label": "東京都"},
        {"value": "14", "count": 1, "label": "神奈川県"},
    ]
    assert page["facets"]["region"] == [{"value": "kanto", "count": 2, "label": "関東経済産業局"}]
    assert {f["value"]: f["label"] for f in page["facets"]["kind"]} == {
        "sekisupe": "登録セキスペ",
        "dx_talent": "DX人材",
    }


def test_new_filters_are_validated_and_named(client: TestClient) -> None:
    response = client.get(
        "/search/experts", params={"region": "atlantis", "role": "wizard", "sort": "random", "facet": "bio"}
    )
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["error"]["fields"]} == {"region", "role", "sort", "facet.0"}


def test_region_and_place_words_find_who_serves_there(client: TestClient, index: SearchEngine) -> None:
    osaka = indexed(index, name="大阪 担当", prefectures=["27"], bio="中小企業を支援")
    indexed(index, name="東京 担当", prefectures=["13"], bio="中小企業を支援")
    assert [h["id"] for h in client.get("/search/experts", params={"region": "kinki"}).json()["items"]] == [osaka["id"]]
    page = client.get("/search/experts", params={"q": "大阪府 支援"}).json()
    assert [h["id"] for h in page["items"]] == [osaka["id"]]


def test_suggest_names_skills_and_topics(client: TestClient, index: SearchEngine) -> None:
    indexed(index, name="山田 太郎", name_kana="やまだ たろう", skills=["aws", "azure"])
    indexed(index, name="山本 花子", name_kana="やまもと はなこ", active=False)
    response = client.get("/search/suggest", params={"q": "ヤマ"})
    assert response.status_code == 200
    assert response.json() == [{"text": "山田 太郎", "kind": "name", "count": 1}]
    skills = client.get("/search/suggest", params={"q": "a", "kind": "skill"}).json()
    assert [s["text"] for s in skills] == ["aws", "azure"]
    assert client.get("/search/suggest", params={"q": ""}).status_code == 422


# -- the broker indexes: who may search what ------------------------------------------------------------------


def _requests(broker_indexes, docs):
    broker_indexes["requests"].upsert(docs)


def _request_doc(title: str, prefecture: str, **fields) -> dict:
    return {
        "id": factories.unique_name().replace(" ", "-")[:20] + prefecture,
        "title": title,
        "summary": "概要",
        "prefectures": [prefecture],
        "onsite": True,
        "remote": False,
        "state": "open",
        "active": True,
        "updated_at": "2026-11-01T00:00:00+09:00",
        **fields,
    }


def test_brokers_search_requests_of_their_prefectures_only(client, broker_indexes, auth) -> None:
    tokyo = _request_doc("ランサムウェア相談", "13")
    osaka = _request_doc("ランサムウェア相談", "27")
    okinawa = _request_doc("クラウド相談", "47", state="matched")
    _requests(broker_indexes, [tokyo, osaka, okinawa])
    broker = auth(Role.BROKER, prefectures=["13", "47"])

    page = client.get(
        "/search/requests", params={"q": "ランサム", "facet": ["prefecture", "state"]}, headers=broker
    ).json()
    assert [h["id"] for h in page["items"]] == [tokyo["id"]] and page["total"] == 1
    assert page["facets"]["prefecture"] == [{"value": "13", "count": 1, "label": "東京都"}]  # Osaka not counted
    # Asking for a prefecture they do not cover, or naming it as a place, finds nothing of it.
    assert client.get("/search/requests", params={"prefecture": "27"}, headers=broker).json()["total"] == 0
    assert client.get("/search/requests", params={"q": "大阪"}, headers=broker).json()["total"] == 0
    states = client.get("/search/requests", params={"state": "matched"}, headers=broker).json()
    assert [h["id"] for h in states["items"]] == [okinawa["id"]]
    # Hub staff are regional staff too; admins see every prefecture.
    hub = auth(Role.HUB, prefectures=["27"])
    assert [h["id"] for h in client.get("/search/requests", headers=hub).json()["items"]] == [osaka["id"]]
    assert client.get("/search/requests", headers=auth(Role.ADMIN)).json()["total"] == 3
    # A broker with no prefectures reads nothing.
    assert client.get("/search/requests", headers=auth(Role.BROKER)).json()["total"] == 0


def test_others_may_not_search_requests_or_projects(client, broker_indexes, auth) -> None:
    _requests(broker_indexes, [_request_doc("秘密の相談", "13")])
    for path in ("/search/requests", "/search/projects"):
        assert client.get(path).status_code == 401
        for role in (Role.SME, Role.EXPERT):
            response = client.get(path, params={"q": "秘密"}, headers=auth(role, prefectures=["13"]))
            assert response.status_code == 403
            assert "秘密" not in response.text


def test_hub_staff_search_projects_of_their_region(client, broker_indexes, auth) -> None:
    project = {
        **_request_doc("受発注データの可視化", "27"),
        "dss_roles": ["data_scientist"],
        "role_labels": ["データサイエンティスト"],
        "remote": True,
    }
    broker_indexes["projects"].upsert([project, {**_request_doc("在庫管理", "13"), "id": "p-tokyo"}])
    hub = auth(Role.HUB, prefectures=["27", "28"])
    page = client.get(
        "/search/projects", params={"q": "データ", "role": "data_scientist", "facet": "role"}, headers=hub
    ).json()
    assert [h["id"] for h in page["items"]] == [project["id"]]
    assert page["items"][0]["highlights"]["title"] == "受発注<mark>データ</mark>の可視化"
    assert page["facets"]["role"] == [{"value": "data_scientist", "count": 1, "label": "データサイエンティスト"}]
