"""HTTP routes for SME requests, their rankings, proposals and history (thin: validation in schemas, rules
in service; the route commits, which also wakes the outbox relay)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.matching import service
from services.matching.deps import SettingsDep
from services.matching.lifecycle import ProposalState
from services.matching.schemas import (
    ProposalCreate,
    ProposalRead,
    RankingRead,
    ReasonBody,
    RequestCreate,
    RequestPatch,
    RequestRead,
    TransitionRead,
)
from tsunagu.deps import PageDep, SessionDep, SmeDep, UserDep
from tsunagu.pagination import Page

router = APIRouter(prefix="/requests", tags=["requests"])


@router.post("", status_code=201)
def submit(body: RequestCreate, session: SessionDep, caller: SmeDep) -> RequestRead:
    created = service.submit_request(session, caller, body)
    session.commit()
    return service.to_read(created)


@router.get("")
def list_requests(
    session: SessionDep,
    caller: UserDep,
    page: PageDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[RequestRead]:
    rows, total = service.list_visible_requests(session, caller, status=status, page=page)
    return Page(items=[service.to_read(row) for row in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/{request_id}")
def read(request_id: str, session: SessionDep, caller: UserDep) -> RequestRead:
    return service.to_read(service.readable_request(session, caller, request_id))


@router.get("/{request_id}/ranking")
def ranking(request_id: str, session: SessionDep, caller: UserDep) -> RankingRead:
    return service.ranking_view(session, caller, request_id)


@router.patch("/{request_id}")
def edit(request_id: str, body: RequestPatch, session: SessionDep, caller: UserDep) -> RequestRead:
    """Edit a draft or open request; an open one is ranked again."""
    request = service.edit_request(session, caller, request_id, body)
    session.commit()
    return service.to_read(request)


@router.post("/{request_id}/submit")
def submit_draft(request_id: str, session: SessionDep, caller: UserDep) -> RequestRead:
    request = service.submit_draft(session, caller, request_id)
    session.commit()
    return service.to_read(request)


@router.post("/{request_id}/cancel")
def cancel(request_id: str, body: ReasonBody, session: SessionDep, caller: UserDep) -> RequestRead:
    request = service.cancel_request(session, caller, request_id, body.reason)
    session.commit()
    return service.to_read(request)


@router.get("/{request_id}/history")
def history(request_id: str, session: SessionDep, caller: UserDep) -> list[TransitionRead]:
    return service.history(session, caller, request_id)


@router.get("/{request_id}/proposals")
def proposals(
    request_id: str,
    session: SessionDep,
    caller: UserDep,
    page: PageDep,
    state: Annotated[ProposalState | None, Query()] = None,
) -> Page[ProposalRead]:
    rows, total = service.list_visible_proposals(session, caller, state=state, page=page, request_id=request_id)
    return Page(
        items=[service.proposal_read(session, row) for row in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/{request_id}/proposals", status_code=201)
def propose(
    request_id: str, body: ProposalCreate, session: SessionDep, caller: UserDep, settings: SettingsDep
) -> ProposalRead:
    """A broker covering the request's prefecture proposes an eligible expert."""
    proposal = service.propose(session, caller, request_id, body, settings)
    session.commit()
    return service.proposal_read(session, proposal)
