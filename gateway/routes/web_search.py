"""Support staff's search screen, /broker/search (issue 12): the SME requests and マナビDX Quest hub projects of
the prefectures the caller covers, by free text with the matched words marked, narrowed by state,
prefecture and topic, each choice showing how many it would find.

It asks the search service's public paths (``/api/v1/search/requests`` and ``/projects``) as the signed-in
person, like every screen (gateway.web.upstream): the service limits every query, its totals, counts and
snippets to the caller's prefectures, so nothing outside them can show. The snippets are the service's safe
HTML (escaped text, then ``<mark>``), the only markup this page takes from an answer."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from gateway.web.pages import WebDep
from tsunagu.auth import Role

router = APIRouter(include_in_schema=False)
STAFF = (Role.BROKER, Role.HUB)
PAGE = 20
INDEXES = {
    "requests": ("/api/v1/search/requests", "相談", "/broker/requests/{id}"),
    "projects": ("/api/v1/search/projects", "ハブのプロジェクト", "/hub/projects/{id}"),
}
FACETS = {"state": "状態", "prefecture": "都道府県", "topic": "テーマ"}
STATE_JA = {
    "open": "受付中",
    "matched": "マッチ済み",
    "completed": "完了",
    "cancelled": "取消",
    "team_proposed": "編成案あり",
    "team_confirmed": "チーム確定",
    "closed": "終了",
}
Values = Annotated[list[Annotated[str, Query(max_length=40)]], Query(max_length=50)]


@router.get("/broker/search", response_class=HTMLResponse)
async def broker_search(
    web: WebDep,
    index: Literal["requests", "projects"] = "requests",
    q: Annotated[str, Query(max_length=200)] = "",
    state: Values = [],  # noqa: B006 - FastAPI copies query defaults
    prefecture: Values = [],  # noqa: B006
    topic: Values = [],  # noqa: B006
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> HTMLResponse:
    web.require(*STAFF)
    path, noun, link = INDEXES[index]
    chosen = {"state": state, "prefecture": prefecture, "topic": topic}
    answer = await web.api.call(
        "GET",
        path,
        params={"q": q, **chosen, "facet": list(FACETS), "limit": PAGE, "offset": offset, "highlight": "true"},
    )
    # A filter value the service refuses (422) is shown beside the form; any other refusal is an error page.
    if not answer.is_ok and answer.status != 422:
        answer.ok()
    page = answer.data if answer.is_ok else None

    def url(**changes: object) -> str:
        """This search with some parameters changed (a facet toggled, the next page)."""
        params = {"index": index, "q": q, **chosen, "offset": 0} | changes
        return "/broker/search?" + urlencode({k: v for k, v in params.items() if v not in ("", [], None)}, doseq=True)

    def toggled(facet: str, value: str) -> str:
        values = chosen[facet]
        return url(**{facet: [v for v in values if v != value] if value in values else [*values, value]})

    hits = []
    for item in (page or {}).get("items", []):
        marks = {field: Markup(snippet) for field, snippet in (item.get("highlights") or {}).items()}  # noqa: S704 - the search service's escaped snippets
        hits.append({"item": item, "marks": marks, "href": link.format(id=item["id"])})
    return web.render(
        "broker_search.html",
        {
            "index": index,
            "indexes": {key: value[1] for key, value in INDEXES.items()},
            "noun": noun,
            "q": q,
            "chosen": chosen,
            "page": page,
            "hits": hits,
            "facet_names": FACETS,
            "state_ja": STATE_JA,
            "error": None if answer.is_ok else answer.message_ja,
            "error_fields": answer.fields,
            "url": url,
            "toggled": toggled,
            "offset": offset,
            "page_size": PAGE,
            "prefectures": web.caller.prefectures,
        },
    )
