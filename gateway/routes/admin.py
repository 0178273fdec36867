"""Operator screens of the API: the audit log (sign-ins, failed sign-ins, role changes, verifications,
blocks, password changes) and dead-lettered events (see them, replay one after fixing the cause)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from gateway import deadletters, service
from gateway.deps import AdminUserDep, SettingsDep
from gateway.schemas import AuditKind, AuditPage, DeadLetterPage, ReplayResult
from tsunagu.deps import PageDep, SessionDep
from tsunagu.types import IsoDateTime

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/audit")
def audit_log(
    session: SessionDep,
    _admin: AdminUserDep,
    page: PageDep,
    kind: Annotated[list[AuditKind] | None, Query()] = None,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=254)] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
) -> AuditPage:
    """The audit log, newest first. Filters: ``kind`` (repeatable), the account it concerns (``user_id``),
    who did it (``actor_id``), ``target`` (the identifier of a failed sign-in, an expert profile's id),
    ``since`` (inclusive) and ``until`` (exclusive) as ISO date-times."""
    return service.audit_page(
        session,
        limit=page.limit,
        offset=page.offset,
        kinds=[value.value for value in kind] if kind else None,
        user_id=user_id,
        actor_id=actor_id,
        target=target,
        since=since,
        until=until,
    )


@router.get("/dead-letters")
async def dead_letters(
    settings: SettingsDep, _admin: AdminUserDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> DeadLetterPage:
    return await deadletters.newest(settings, limit)


@router.post("/dead-letters/{sequence}/replay")
async def replay(
    settings: SettingsDep, _admin: AdminUserDep, sequence: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> ReplayResult:
    return await deadletters.replay(settings, sequence)
