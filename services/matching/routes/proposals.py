"""HTTP routes for proposals: the expert accepts or declines, the broker withdraws, the SME confirms
(thin: rules in service.py; the route commits, so the change, its audit row and its events go together)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.matching import service
from services.matching.deps import SettingsDep
from services.matching.lifecycle import ProposalState
from services.matching.schemas import OptionalReasonBody, ProposalRead, ReasonBody
from tsunagu.deps import PageDep, SessionDep, UserDep
from tsunagu.pagination import Page

router = APIRouter(prefix="/proposals", tags=["proposals"])


@router.get("")
def list_proposals(
    session: SessionDep, caller: UserDep, page: PageDep, state: Annotated[ProposalState | None, Query()] = None
) -> Page[ProposalRead]:
    """What the caller may see: an expert the proposals to them, a broker or hub those in their
    prefectures, an SME those on its requests, an admin all; newest first."""
    rows, total = service.list_visible_proposals(session, caller, state=state, page=page)
    return Page(
        items=[service.proposal_read(session, row) for row in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{proposal_id}")
def read(proposal_id: str, session: SessionDep, caller: UserDep) -> ProposalRead:
    proposal, request = service.readable_proposal(session, caller, proposal_id)
    return service.proposal_read(session, proposal, request)


@router.post("/{proposal_id}/accept")
def accept(proposal_id: str, session: SessionDep, caller: UserDep) -> ProposalRead:
    proposal = service.accept_proposal(session, caller, proposal_id)
    session.commit()
    return service.proposal_read(session, proposal)


@router.post("/{proposal_id}/decline")
def decline(proposal_id: str, body: ReasonBody, session: SessionDep, caller: UserDep) -> ProposalRead:
    proposal = service.decline_proposal(session, caller, proposal_id, body.reason)
    session.commit()
    return service.proposal_read(session, proposal)


@router.post("/{proposal_id}/withdraw")
def withdraw(
    proposal_id: str, session: SessionDep, caller: UserDep, body: OptionalReasonBody | None = None
) -> ProposalRead:
    proposal = service.withdraw_proposal(session, caller, proposal_id, body.reason if body else None)
    session.commit()
    return service.proposal_read(session, proposal)


@router.post("/{proposal_id}/confirm")
def confirm(proposal_id: str, session: SessionDep, caller: UserDep, settings: SettingsDep) -> ProposalRead:
    """The SME chooses this expert: the answer carries the new engagement's ``engagement_id``."""
    proposal, _engagement = service.confirm_proposal(session, caller, proposal_id, settings)
    session.commit()
    return service.proposal_read(session, proposal)
