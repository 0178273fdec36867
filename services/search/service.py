"""Answering searches: the validated parameters become one engine query, the hits one page with its facet
counts and highlighted snippets.

- Experts: anyone may search, signed in or not: the index only ever holds the public view of an expert (the
  profiles service reduces a profile to its public fields before publishing it).
- Requests and hub projects: brokers and hub staff (and admins), and only in the prefectures they cover
  (Principal.covers): the caller's prefectures are a filter of the engine query itself, so hits, totals,
  facet counts and snippets all come from documents the caller may read. A prefecture asked for outside
  them is not an error (it names no object): it simply matches nothing.
- Suggestions: prefixes of the public names, skills and topic labels of active experts.

Keeping the indexes in step with the events is consumers.py's job.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from services.search.engine import SearchEngine, SearchQuery
from services.search.schemas import (
    ExpertHit,
    ExpertSearchParams,
    FacetValue,
    ProjectHit,
    ProjectSearchParams,
    RequestHit,
    RequestSearchParams,
    SearchPage,
    SuggestionRead,
    SuggestParams,
)
from tsunagu import reference
from tsunagu.auth import Principal

H = TypeVar("H", bound=BaseModel)

STATE_LABELS = {
    "open": "受付中",
    "matched": "マッチ済み",
    "completed": "完了",
    "cancelled": "取消",
}
FLAG_LABELS = {"true": "可", "false": "不可"}


def _label(facet: str, value: str) -> str | None:
    """A facet value in words (Japanese), where it has one."""
    if facet == "prefecture":
        prefecture = reference.prefectures().get(value)
        return prefecture.name if prefecture else None
    if facet == "region":
        region = reference.regions().get(value)
        return region.label_ja if region else None
    if facet == "topic":
        topic = reference.topics().get(value)
        return topic.label_ja if topic else None
    if facet == "role":
        role = reference.dss_roles().get(value)
        return role.label_ja if role else None
    if facet in ("onsite", "remote"):
        return FLAG_LABELS.get(value)
    if facet == "state":
        return STATE_LABELS.get(value)
    if facet == "kind":
        return {"sekisupe": "登録セキスペ", "dx_talent": "DX人材"}.get(value)
    return None


def _page(model: type[H], query: SearchQuery, engine: SearchEngine | None) -> SearchPage[H]:
    if engine is None:  # nothing the caller may read
        return SearchPage[model](
            items=[], total=0, limit=query.limit, offset=query.offset, facets={f: [] for f in query.facets}
        )
    result = engine.search(query)
    items = []
    for i, hit in enumerate(result.hits):
        row: dict[str, Any] = dict(hit)
        row["highlights"] = result.highlights[i] if result.highlights else {}
        items.append(model.model_validate(row))
    facets = {
        facet: [FacetValue(value=v, count=c, label=_label(facet, v)) for v, c in counts.items()]
        for facet, counts in result.facets.items()
    }
    return SearchPage[model](items=items, total=result.total, limit=query.limit, offset=query.offset, facets=facets)


def _common(params: Any) -> dict[str, Any]:
    return dict(
        q=params.q,
        regions=tuple(params.region),
        topics=tuple(params.topic),
        remote=params.remote,
        onsite=params.onsite,
        sort=params.sort,
        highlight=params.highlight,
        facets=tuple(params.facet),
        limit=params.limit,
        offset=params.offset,
    )


def search_experts(engine: SearchEngine, params: ExpertSearchParams) -> SearchPage[ExpertHit]:
    query = SearchQuery(
        **_common(params),
        prefectures=tuple(params.prefecture),
        skills=tuple(params.skill),
        roles=tuple(params.role),
        kind=params.kind,
    )
    return _page(ExpertHit, query, engine)


def covered_prefectures(caller: Principal, asked: list[str]) -> tuple[str, ...] | None:
    """The prefectures a broker-index query is limited to: those asked for that the caller covers, or all
    the caller covers; None for admins and the system asking for none (everything)."""
    if caller.is_privileged:
        return tuple(asked) if asked else None
    return tuple(p for p in (asked or caller.prefectures) if caller.covers(p))


def search_requests(engine: SearchEngine, caller: Principal, params: RequestSearchParams) -> SearchPage[RequestHit]:
    scope = covered_prefectures(caller, params.prefecture)
    query = SearchQuery(
        **_common(params), prefectures=scope or (), skills=tuple(params.skill), states=tuple(params.state)
    )
    return _page(RequestHit, query, None if scope == () else engine)


def search_projects(engine: SearchEngine, caller: Principal, params: ProjectSearchParams) -> SearchPage[ProjectHit]:
    scope = covered_prefectures(caller, params.prefecture)
    query = SearchQuery(
        **_common(params), prefectures=scope or (), roles=tuple(params.role), states=tuple(params.state)
    )
    return _page(ProjectHit, query, None if scope == () else engine)


def suggest(engine: SearchEngine, params: SuggestParams) -> list[SuggestionRead]:
    kinds = tuple(params.kind) or ("name", "skill", "topic")
    return [
        SuggestionRead(text=s.text, kind=s.kind, count=s.count)
        for s in engine.suggest(params.q, kinds=kinds, limit=params.limit)
    ]
