"""HTTP routes for SME requests and their rankings (thin: validation in schemas, rules in service)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from services.matching import service
from services.matching.schemas import Page, RankingRead, RequestCreate, RequestRead
from tsunagu.auth import Principal, require_authenticated
from tsunagu.db import session_scope


def build_router(principal_dependency) -> APIRouter:  # noqa: ANN001
    router = APIRouter(prefix="/requests", tags=["requests"])

    def caller(principal: Principal = Depends(principal_dependency)) -> Principal:
        return require_authenticated(principal)

    @router.post("", status_code=201, response_model=RequestRead)
    def submit(body: RequestCreate, http: Request, principal: Principal = Depends(caller)) -> RequestRead:
        runtime = http.app.state.runtime
        with session_scope(runtime.engine) as session:
            created = service.submit_request(session, principal, body)
            result = service.to_read(created)
        runtime.events_written()
        return result

    @router.get("", response_model=Page)
    def list_requests(
        http: Request,
        principal: Principal = Depends(caller),
        status: str | None = Query(default=None, max_length=20),
        limit: int = Query(default=20, ge=1, le=100),
        offset: int = Query(default=0, ge=0, le=100_000),
    ) -> Page:
        with session_scope(http.app.state.runtime.engine) as session:
            rows, total = service.list_visible_requests(session, principal, status=status, limit=limit, offset=offset)
            return Page(items=[service.to_read(row) for row in rows], total=total, limit=limit, offset=offset)

    @router.get("/{request_id}", response_model=RequestRead)
    def read(request_id: str, http: Request, principal: Principal = Depends(caller)) -> RequestRead:
        with session_scope(http.app.state.runtime.engine) as session:
            return service.to_read(service.readable_request(session, principal, request_id))

    @router.get("/{request_id}/ranking", response_model=RankingRead)
    def ranking(request_id: str, http: Request, principal: Principal = Depends(caller)) -> RankingRead:
        with session_scope(http.app.state.runtime.engine) as session:
            return service.ranking_view(session, principal, request_id)

    return router
