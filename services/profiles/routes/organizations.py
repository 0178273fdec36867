"""/organizations: SME organisations and the users who act for them. Joining takes the user's consent: a
member invites (POST /organizations/{id}/members), the invited user accepts or declines
(/organizations/invitations/...)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.profiles import service
from services.profiles.schemas import (
    InvitationRead,
    MemberAdd,
    OrganizationCreate,
    OrganizationPatch,
    OrganizationRead,
)
from tsunagu.deps import PageDep, SessionDep, UserDep
from tsunagu.pagination import Page

router = APIRouter(prefix="/organizations", tags=["organizations"])

InvitationStatus = Literal["pending", "accepted", "declined", "cancelled"]


@router.post("", status_code=201)
def create_organization(body: OrganizationCreate, session: SessionDep, caller: UserDep) -> OrganizationRead:
    organization = service.create_organization(session, caller, body)
    session.commit()
    return organization


@router.get("")
def list_organizations(
    session: SessionDep,
    caller: UserDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[OrganizationRead]:
    """SME users: theirs; brokers: those in their prefectures; admins: all."""
    return service.list_organizations(session, caller, limit=limit, offset=offset)


@router.get("/invitations", response_model=Page[InvitationRead])
def my_invitations(
    session: SessionDep, caller: UserDep, page: PageDep, status: InvitationStatus | None = "pending"
) -> Page[InvitationRead]:
    """The caller's invitations (pending by default): the organisation's name and who invited them."""
    return service.my_invitations(session, caller, status=status, limit=page.limit, offset=page.offset)


@router.post("/invitations/{invitation_id}/accept", response_model=InvitationRead)
def accept_invitation(invitation_id: str, session: SessionDep, caller: UserDep) -> InvitationRead:
    """The invited user joins the organisation."""
    invitation = service.answer_invitation(session, caller, invitation_id, accept=True)
    session.commit()
    return invitation


@router.post("/invitations/{invitation_id}/decline", response_model=InvitationRead)
def decline_invitation(invitation_id: str, session: SessionDep, caller: UserDep) -> InvitationRead:
    invitation = service.answer_invitation(session, caller, invitation_id, accept=False)
    session.commit()
    return invitation


@router.get("/{organization_id}")
def get_organization(organization_id: str, session: SessionDep, caller: UserDep) -> OrganizationRead:
    return service.get_organization(session, caller, organization_id)


@router.patch("/{organization_id}")
def update_organization(
    organization_id: str, body: OrganizationPatch, session: SessionDep, caller: UserDep
) -> OrganizationRead:
    organization = service.update_organization(session, caller, organization_id, body)
    session.commit()
    return organization


@router.post("/{organization_id}/members", status_code=201, response_model=InvitationRead)
def invite_member(organization_id: str, body: MemberAdd, session: SessionDep, caller: UserDep) -> InvitationRead:
    """Invite a user to act for the organisation: they become a member when they accept."""
    invitation = service.invite_member(session, caller, organization_id, body.user_id)
    session.commit()
    return invitation


@router.delete("/{organization_id}/members/{user_id}")
def remove_member(organization_id: str, user_id: str, session: SessionDep, caller: UserDep) -> OrganizationRead:
    organization = service.remove_member(session, caller, organization_id, MemberAdd(user_id=user_id).user_id)
    session.commit()
    return organization


@router.get("/{organization_id}/invitations", response_model=Page[InvitationRead])
def organization_invitations(
    organization_id: str,
    session: SessionDep,
    caller: UserDep,
    page: PageDep,
    status: InvitationStatus | None = None,
) -> Page[InvitationRead]:
    """Members and admins: whom the organisation invited."""
    return service.organization_invitations(
        session, caller, organization_id, status=status, limit=page.limit, offset=page.offset
    )


@router.delete("/{organization_id}/invitations/{invitation_id}", response_model=InvitationRead)
def cancel_invitation(organization_id: str, invitation_id: str, session: SessionDep, caller: UserDep) -> InvitationRead:
    """Members and admins withdraw a pending invitation."""
    invitation = service.cancel_invitation(session, caller, organization_id, invitation_id)
    session.commit()
    return invitation
