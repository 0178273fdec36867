"""The Japanese web UI's public pages (server-rendered with Jinja2; the same data the JSON API serves):
``/`` expert search with facets and ``/experts/{id}``, a profile as the reader may see it. Not part of the
OpenAPI: it answers HTML. The other screens are one router per area (``web_auth``, ``web_sme``,
``web_expert``, ``web_broker``, ``web_admin``, ``web_notifications``); their shared parts are in
``gateway.web``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from gateway.web.pages import WebDep
from tsunagu.errors import ApiError
from tsunagu.reference import prefecture_code, prefectures, topics

router = APIRouter(include_in_schema=False)


def topic_groups() -> list[tuple[str, list]]:
    items = list(topics().values())
    return [
        ("情報セキュリティ", [t for t in items if t.area == "security"]),
        ("DX・デジタル化", [t for t in items if t.area != "security"]),
    ]


@router.get("/", response_class=HTMLResponse)
async def home(
    web: WebDep,
    q: Annotated[str, Query(max_length=200)] = "",
    prefecture: Annotated[str, Query(max_length=20)] = "",
    topic: Annotated[str, Query(max_length=50)] = "",
    skill: Annotated[str, Query(max_length=50)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    onsite: Annotated[str, Query(max_length=5)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> HTMLResponse:
    results, error = None, None
    code = prefecture_code(prefecture) if prefecture else None
    terms = " ".join(part for part in (q.strip(), skill.strip()) if part)
    params: list[tuple[str, str]] = [("q", terms), ("limit", "20"), ("offset", str(offset))]
    if code:
        params.append(("prefecture", code))
    if topic in topics():
        params.append(("topic", topic))
    if kind in ("sekisupe", "dx_talent"):
        params.append(("kind", kind))
    if onsite == "1":
        params.append(("onsite", "true"))
    searched = bool(terms or code or topic or kind or onsite)
    if searched:
        answer = await web.api.call("GET", "/api/v1/search/experts", params=params)
        if answer.is_ok:
            results = answer.data
        else:
            error = answer.message_ja
    values = {"q": q, "prefecture": code or "", "topic": topic, "skill": skill, "kind": kind, "onsite": onsite}
    return web.render(
        "index.html",
        {
            "values": values,
            "prefectures": list(prefectures().values()),
            "topic_groups": topic_groups(),
            "results": results,
            "error": error,
            "offset": offset,
            "query_string": "&".join(f"{k}={v}" for k, v in values.items() if v),
        },
    )


@router.get("/experts/{expert_id}", response_class=HTMLResponse)
async def expert_page(web: WebDep, expert_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    answer = await web.api.call("GET", f"/api/v1/experts/{expert_id}")
    if answer.status in {404, 422}:
        raise ApiError(404, "not_found", "この専門家の情報は見つかりません", "Expert not found")
    expert = answer.ok()
    return web.render("expert.html", {"expert": expert})
