"""The Japanese web UI (server-rendered with Jinja2; the same data the JSON API serves)."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from tsunagu.reference import prefecture_code, prefectures, topics

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    q: str = Query(default="", max_length=200),
    prefecture: str = Query(default="", max_length=20),
    topic: str = Query(default="", max_length=50),
) -> HTMLResponse:
    results, error = None, None
    params: list[tuple[str, str]] = [("q", q), ("limit", "20")]
    code = prefecture_code(prefecture) if prefecture else None
    if code:
        params.append(("prefecture", code))
    if topic in topics():
        params.append(("topic", topic))
    if q or code or topic:
        try:
            response = await request.app.state.http.get(request.app.state.settings.search_url + "/search/experts", params=params)
            if response.status_code == 200:
                results = response.json()
            else:
                error = response.json().get("error", {}).get("message_ja", "検索できませんでした")
        except httpx.TransportError:
            error = "検索サービスに接続できません。しばらくしてから再度お試しください"
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "q": q,
            "prefecture": code or "",
            "topic": topic,
            "prefectures": list(prefectures().values()),
            "topics": list(topics().values()),
            "topic_labels": {t.id: t.label_ja for t in topics().values()},
            "prefecture_names": {p.code: p.name for p in prefectures().values()},
            "results": results,
            "error": error,
        },
    )
