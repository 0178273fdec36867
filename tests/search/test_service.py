"""Search rules (services/search/service.py): validated parameters become one engine query."""

from __future__ import annotations

from services.search import service
from services.search.engine import SearchQuery, SearchResult
from services.search.schemas import ExpertSearchParams, RequestSearchParams
from tests import factories
from tsunagu.auth import Principal, Role


class RecordingEngine:
    def __init__(self, hits: list[dict]) -> None:
        self.hits = hits
        self.queries: list[SearchQuery] = []

    def search(self, query: SearchQuery) -> SearchResult:
        self.queries.append(query)
        return SearchResult(hits=self.hits, total=41)


def test_a_search_asks_the_engine_once_for_active_experts() -> None:
    hit = factories.expert_published_data()
    engine = RecordingEngine([hit])
    params = ExpertSearchParams(q="aws", prefecture=["大阪"], topic=["ransomware"], remote=True, limit=5, offset=10)

    page = service.search_experts(engine, params)

    assert engine.queries == [
        SearchQuery(
            q="aws", prefectures=("27",), topics=("ransomware",), remote=True, limit=5, offset=10, highlight=True
        )
    ]
    assert engine.queries[0].active_only
    assert (page.total, page.limit, page.offset) == (41, 5, 10)
    assert page.items[0].id == hit["id"]


def test_broker_searches_are_limited_to_the_prefectures_covered() -> None:
    broker = Principal(sub="b", role=Role.BROKER, prefectures=["13", "14"])
    assert service.covered_prefectures(broker, []) == ("13", "14")
    assert service.covered_prefectures(broker, ["14", "27"]) == ("14",)
    assert service.covered_prefectures(broker, ["27"]) == ()
    assert service.covered_prefectures(Principal(sub="a", role=Role.ADMIN), []) is None
    assert service.covered_prefectures(Principal(sub="a", role=Role.ADMIN), ["27"]) == ("27",)
    assert service.covered_prefectures(Principal(sub="s", role=Role.SME, prefectures=["13"]), []) == ()


def test_a_search_outside_the_covered_prefectures_never_reaches_the_engine() -> None:
    engine = RecordingEngine([])
    broker = Principal(sub="b", role=Role.BROKER, prefectures=["13"])
    page = service.search_requests(engine, broker, RequestSearchParams(prefecture=["27"], facet=["state"]))
    assert engine.queries == [] and page.total == 0 and page.facets == {"state": []}
    service.search_requests(engine, broker, RequestSearchParams(q="相談"))
    assert engine.queries[0].prefectures == ("13",)
