"""/experts: the active list (the gateway forwards /api/v1/experts/** here unchanged).

A profile view leaves out what the caller may not see: ``response_model_exclude_unset`` keeps hidden
fields absent from the JSON (not null)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query

from services.profiles import service
from services.profiles.repository import ExpertFilter
from services.profiles.schemas import (
    CorrectionCreate,
    CorrectionRead,
    ExpertCreate,
    ExpertPatch,
    ExpertView,
    Verification,
    VisibilityUpdate,
)
from services.profiles.service import ProfilesSettingsDep
from tsunagu.deps import CallerDep, PageDep, SessionDep, UserDep
from tsunagu.errors import invalid_field
from tsunagu.pagination import Page
from tsunagu.reference import prefecture_code, topics
from tsunagu.types import normalize_tag

router = APIRouter(prefix="/experts", tags=["experts"])


@router.post("", status_code=201, response_model=ExpertView, response_model_exclude_unset=True)
def create_expert(
    body: ExpertCreate, session: SessionDep, settings: ProfilesSettingsDep, caller: CallerDep
) -> ExpertView:
    """An expert creates its own entry (one per user), pending until an admin verifies it; admins and the
    system create any (verified). A registration number another entry holds: 409, and a contested claim for
    the admin."""
    try:
        view = service.create_expert(session, settings, caller, body)
    except service.ClaimFiled:
        session.commit()  # the claim is kept for the admin; nothing else was written
        raise
    session.commit()
    return view


@router.get("", response_model=Page[ExpertView], response_model_exclude_unset=True)
def list_experts(
    session: SessionDep,
    settings: ProfilesSettingsDep,
    caller: CallerDep,
    kind: Literal["sekisupe", "dx_talent"] | None = None,
    active: bool | None = None,
    prefecture: Annotated[str | None, Query(max_length=20)] = None,
    topic: Annotated[str | None, Query(max_length=100)] = None,
    skill: Annotated[str | None, Query(max_length=50)] = None,
    service_id: Annotated[str | None, Query(alias="service", max_length=100)] = None,
    status_reason: Annotated[str | None, Query(max_length=40)] = None,
    stale_days: Annotated[int | None, Query(ge=1, le=3650, description="最終確認がこの日数より前")] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    verification: Annotated[Verification | None, Query(description="admins: pending / rejected entries")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[ExpertView]:
    """Brokers (支援機関) and admins: a filtered, paginated list, each entry in the caller's view."""
    code = None
    if prefecture is not None:
        code = prefecture_code(prefecture)
        if code is None:
            raise invalid_field(
                "prefecture", f"都道府県「{prefecture}」が見つかりません", f"Unknown prefecture: {prefecture}"
            )
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
        confirmed_before=service.stale_cutoff(stale_days) if stale_days else None,
        name=name,
        verification=verification,
    )
    return service.list_experts(session, settings, caller, where, limit=limit, offset=offset)


@router.get("/me", response_model=ExpertView, response_model_exclude_unset=True)
def my_expert(session: SessionDep, settings: ProfilesSettingsDep, caller: UserDep) -> ExpertView:
    return service.my_expert(session, settings, caller)


@router.get("/{expert_id}", response_model=ExpertView, response_model_exclude_unset=True)
def get_expert(expert_id: str, session: SessionDep, settings: ProfilesSettingsDep, caller: CallerDep) -> ExpertView:
    """Anyone: the fields the entry's visibility settings allow for the caller's role."""
    return service.get_expert(session, settings, caller, expert_id)


@router.patch("/{expert_id}", response_model=ExpertView, response_model_exclude_unset=True)
def update_expert(
    expert_id: str,
    patch: Annotated[ExpertPatch, Body(examples=[{"skills": ["AWS", "Azure"], "visibility": {"fee": "public"}}])],
    session: SessionDep,
    settings: ProfilesSettingsDep,
    caller: UserDep,
) -> ExpertView:
    """Partial update by the expert or an admin; ``visibility`` here merges with the current settings."""
    view = service.update_expert(session, settings, caller, expert_id, patch)
    session.commit()
    return view


@router.put("/{expert_id}/visibility", response_model=ExpertView, response_model_exclude_unset=True)
def set_visibility(
    expert_id: str, body: VisibilityUpdate, session: SessionDep, settings: ProfilesSettingsDep, caller: UserDep
) -> ExpertView:
    """Replace all visibility settings (a field left out returns to its default)."""
    view = service.set_visibility(session, settings, caller, expert_id, body)
    session.commit()
    return view


@router.post("/{expert_id}/confirm-active", response_model=ExpertView, response_model_exclude_unset=True)
def confirm_active(expert_id: str, session: SessionDep, settings: ProfilesSettingsDep, caller: UserDep) -> ExpertView:
    """「活動中」の確認 in one action."""
    view = service.confirm_active(session, settings, caller, expert_id)
    session.commit()
    return view


@router.post("/{expert_id}/corrections", status_code=201, response_model=CorrectionRead)
def file_correction(expert_id: str, body: CorrectionCreate, session: SessionDep, caller: UserDep) -> CorrectionRead:
    """The owner asks the operator to correct regulated data (registration number, registration date,
    renewal deadline, training record), which the expert may not change themselves."""
    correction = service.file_correction(session, caller, expert_id, body)
    session.commit()
    return correction


@router.get("/{expert_id}/corrections", response_model=Page[CorrectionRead])
def list_corrections(expert_id: str, session: SessionDep, caller: UserDep, page: PageDep) -> Page[CorrectionRead]:
    """The owner's (and admins') correction requests of the entry, oldest first."""
    return service.expert_corrections(session, caller, expert_id, limit=page.limit, offset=page.offset)
