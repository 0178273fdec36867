"""HTTP routes for engagements: read, complete, cancel, rate (thin: rules in service.py; the route commits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.matching import service
from services.matching.lifecycle import EngagementState
from services.matching.schemas import EngagementRead, RatingCreate, ReasonBody
from tsunagu.deps import PageDep, SessionDep, UserDep
from tsunagu.pagination import Page

router = APIRouter(prefix="/engagements", tags=["engagements"])


@router.get("")
def list_engagements(
    session: SessionDep, caller: UserDep, page: PageDep, state: Annotated[EngagementState | None, Query()] = None
) -> Page[EngagementRead]:
    rows, total = service.list_visible_engagements(session, caller, state=state, page=page)
    return Page(
        items=[service.engagement_read(session, row) for row in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{engagement_id}")
def read(engagement_id: str, session: SessionDep, caller: UserDep) -> EngagementRead:
    engagement, _request = service.readable_engagement(session, caller, engagement_id)
    return service.engagement_read(session, engagement)


@router.post("/{engagement_id}/complete")
def complete(engagement_id: str, session: SessionDep, caller: UserDep) -> EngagementRead:
    engagement = service.complete_engagement(session, caller, engagement_id)
    session.commit()
    return service.engagement_read(session, engagement)


@router.post("/{engagement_id}/cancel")
def cancel(engagement_id: str, body: ReasonBody, session: SessionDep, caller: UserDep) -> EngagementRead:
    engagement = service.cancel_engagement(session, caller, engagement_id, body.reason)
    session.commit()
    return service.engagement_read(session, engagement)


@router.post("/{engagement_id}/ratings", status_code=201)
def rate(engagement_id: str, body: RatingCreate, session: SessionDep, caller: UserDep) -> EngagementRead:
    """Each side once, after completion; the side follows from the caller (the SME or the expert)."""
    service.rate_engagement(session, caller, engagement_id, body)
    session.commit()
    engagement, _request = service.readable_engagement(session, caller, engagement_id)
    return service.engagement_read(session, engagement)
