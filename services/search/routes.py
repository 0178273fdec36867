"""Public expert search (anyone, signed in or not: the index only holds public fields)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from services.search import service
from services.search.engine import SearchQuery
from tsunagu.errors import invalid_field
from tsunagu.reference import prefecture_code, topics

router = APIRouter(prefix="/search", tags=["search"])


@router.get("/experts")
def search_experts(
    http: Request,
    q: str = Query(default="", max_length=200),
    prefecture: list[str] = Query(default_factory=list, max_length=47),
    topic: list[str] = Query(default_factory=list, max_length=50),
    kind: str | None = Query(default=None, pattern="^(sekisupe|dx_talent)$"),
    remote: bool | None = None,
    onsite: bool | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    offset: int = Query(default=0, ge=0, le=10_000),
) -> dict:
    codes = []
    for value in prefecture:
        code = prefecture_code(value)
        if code is None:
            raise invalid_field("prefecture", f"都道府県「{value}」は存在しません", f"Unknown prefecture: {value}")
        codes.append(code)
    unknown = [t for t in topic if t not in topics()]
    if unknown:
        raise invalid_field("topic", f"不明な相談テーマです: {', '.join(unknown)}", f"Unknown topics: {', '.join(unknown)}")
    query = SearchQuery(
        q=q,
        prefectures=tuple(codes),
        topics=tuple(topic),
        kind=kind,
        remote=remote,
        onsite=onsite,
        limit=limit,
        offset=offset,
    )
    return service.search_experts(http.app.state.search_engine, query)
