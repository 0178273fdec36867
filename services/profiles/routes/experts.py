"""/experts: the active list (the gateway forwards /api/v1/experts/** here unchanged)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query

from tsunagu.auth import Principal
from tsunagu.errors import invalid_field
from tsunagu.reference import prefecture_code, topics

from services.profiles.repository import ExpertFilter
from services.profiles.schemas import ExpertCreate, VisibilityUpdate, normalize_tag
from services.profiles.service import ProfilesService, stale_cutoff


def build_router(service: ProfilesService, principal_dependency) -> APIRouter:  # noqa: ANN001
    router = APIRouter(prefix="/experts", tags=["experts"])
    Caller = Depends(principal_dependency)

    @router.post("", status_code=201)
    def create_expert(body: ExpertCreate, principal: Principal = Caller) -> dict[str, Any]:
        """An expert creates its own entry (one per user); admins and the system create any."""
        return service.create_expert(principal, body)

    @router.get("")
    def list_experts(
        principal: Principal = Caller,
        kind: Literal["sekisupe", "dx_talent"] | None = None,
        active: bool | None = None,
        prefecture: str | None = Query(default=None, max_length=20),
        topic: str | None = Query(default=None, max_length=100),
        skill: str | None = Query(default=None, max_length=50),
        service_id: str | None = Query(default=None, alias="service", max_length=100),
        status_reason: str | None = Query(default=None, max_length=40),
        stale_days: int | None = Query(default=None, ge=1, le=3650, description="最終確認がこの日数より前"),
        name: str | None = Query(default=None, max_length=100),
        limit: int = Query(default=50, ge=1, le=200),
        offset: int = Query(default=0, ge=0, le=1_000_000),
    ) -> dict[str, Any]:
        """Brokers (支援機関) and admins: a filtered, paginated list, each entry in the caller's view."""
        code = None
        if prefecture is not None:
            code = prefecture_code(prefecture)
            if code is None:
                raise invalid_field("prefecture", f"都道府県「{prefecture}」が見つかりません", f"Unknown prefecture: {prefecture}")
        if topic is not None and topic not in topics():
            raise invalid_field("topic", f"分野「{topic}」は分野一覧にありません", f"Unknown topic: {topic}")
        where = ExpertFilter(
            kind=kind,
            active=active,
            prefecture=code,
            topic=topic,
            skill=normalize_tag(skill) if skill else None,
            service=service_id,
            status_reason=status_reason,
            confirmed_before=stale_cutoff(stale_days) if stale_days else None,
            name=name,
        )
        page = service.list_experts(principal, where, limit=limit, offset=offset)
        return {"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}

    @router.get("/me")
    def my_expert(principal: Principal = Caller) -> dict[str, Any]:
        return service.my_expert(principal)

    @router.get("/{expert_id}")
    def get_expert(expert_id: str, principal: Principal = Caller) -> dict[str, Any]:
        """Anyone: the fields the entry's visibility settings allow for the caller's role."""
        return service.get_expert(principal, expert_id)

    @router.patch("/{expert_id}")
    def update_expert(
        expert_id: str,
        patch: dict[str, Any] = Body(..., examples=[{"skills": ["AWS", "Azure"], "visibility": {"fee": "public"}}]),
        principal: Principal = Caller,
    ) -> dict[str, Any]:
        """Partial update by the expert or an admin; ``visibility`` here merges with the current settings."""
        return service.update_expert(principal, expert_id, patch)

    @router.put("/{expert_id}/visibility")
    def set_visibility(expert_id: str, body: VisibilityUpdate, principal: Principal = Caller) -> dict[str, Any]:
        """Replace all visibility settings (a field left out returns to its default)."""
        return service.set_visibility(principal, expert_id, body)

    @router.post("/{expert_id}/confirm-active")
    def confirm_active(expert_id: str, principal: Principal = Caller) -> dict[str, Any]:
        """「活動中」の確認 in one action."""
        return service.confirm_active(principal, expert_id)

    return router
