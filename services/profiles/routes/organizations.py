"""/organizations: SME organisations and the users who act for them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from tsunagu.auth import Principal

from services.profiles.schemas import MemberAdd, OrganizationCreate, OrganizationPatch
from services.profiles.service import ProfilesService


def build_router(service: ProfilesService, principal_dependency) -> APIRouter:  # noqa: ANN001
    router = APIRouter(prefix="/organizations", tags=["organizations"])
    Caller = Depends(principal_dependency)

    @router.post("", status_code=201)
    def create_organization(body: OrganizationCreate, principal: Principal = Caller) -> dict[str, Any]:
        return service.create_organization(principal, body)

    @router.get("")
    def list_organizations(
        principal: Principal = Caller,
        limit: int = Query(default=50, ge=1, le=200),
        offset: int = Query(default=0, ge=0, le=1_000_000),
    ) -> dict[str, Any]:
        """SME users: theirs; brokers: those in their prefectures; admins: all."""
        return service.list_organizations(principal, limit=limit, offset=offset)

    @router.get("/{organization_id}")
    def get_organization(organization_id: str, principal: Principal = Caller) -> dict[str, Any]:
        return service.get_organization(principal, organization_id)

    @router.patch("/{organization_id}")
    def update_organization(organization_id: str, body: OrganizationPatch, principal: Principal = Caller) -> dict[str, Any]:
        return service.update_organization(principal, organization_id, body)

    @router.post("/{organization_id}/members", status_code=201)
    def add_member(organization_id: str, body: MemberAdd, principal: Principal = Caller) -> dict[str, Any]:
        return service.change_member(principal, organization_id, body, add=True)

    @router.delete("/{organization_id}/members/{user_id}")
    def remove_member(organization_id: str, user_id: str, principal: Principal = Caller) -> dict[str, Any]:
        return service.change_member(principal, organization_id, MemberAdd(user_id=user_id), add=False)

    return router
