"""/admin/experts: bulk import and export of the list, the freshness job on demand, and the operator's trust
work: verifying claimed entries, deciding contested claims and correction requests (admins only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from services.profiles import service
from services.profiles.exporter import ExportEncoding, export_csv_chunks
from services.profiles.freshness import run_freshness
from services.profiles.importer import import_experts
from services.profiles.repository import ExpertFilter
from services.profiles.schemas import (
    ClaimRead,
    CorrectionRead,
    ExpertView,
    FreshnessSummaryRead,
    ImportReportRead,
    PublishedExpertRead,
    Rejection,
)
from services.profiles.service import ProfilesSettingsDep
from tsunagu.db import utcnow
from tsunagu.deps import AdminDep, PageDep, RuntimeDep, SessionDep
from tsunagu.pagination import Page

DecisionStatus = Literal["open", "accepted", "rejected"]

IMPORT_PATH = "/admin/experts/import"

router = APIRouter(prefix="/admin/experts", tags=["admin"])


@router.post("/import")
def import_csv(
    file: Annotated[UploadFile, File(description="CSV（UTF-8 または Shift_JIS/CP932）")],
    session: SessionDep,
    settings: ProfilesSettingsDep,
    _admin: AdminDep,
    encoding: Annotated[Literal["auto", "utf-8", "cp932"], Form()] = "auto",
    dry_run: Annotated[bool, Form()] = False,
) -> ImportReportRead:
    """Upsert the rows of a CSV; bad rows come back in the report (line, field, reason) unwritten."""
    report = import_experts(session, settings, file.file, encoding=encoding, dry_run=dry_run)
    if not dry_run:
        session.commit()
    return ImportReportRead.model_validate(report.as_dict())


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The list in the import format"}},
)
def export_csv(
    runtime: RuntimeDep,
    _admin: AdminDep,
    encoding: Annotated[ExportEncoding, Query()] = "utf-8",
) -> StreamingResponse:
    """The whole list in the import format (UTF-8 with BOM, or CP932 for older Excel)."""
    filename = f"tsunagu-experts-{utcnow():%Y%m%d-%H%M%S}.csv"

    def chunks() -> Iterator[bytes]:
        # Its own session: the response streams after the request's session has closed.
        with Session(runtime.engine) as session:
            yield from export_csv_chunks(session, encoding)

    return StreamingResponse(
        chunks(),
        media_type=f"text/csv; charset={'utf-8' if encoding == 'utf-8' else 'shift_jis'}",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/freshness/run")
def run_freshness_now(session: SessionDep, settings: ProfilesSettingsDep, _admin: AdminDep) -> FreshnessSummaryRead:
    """Deactivate, remind and reactivate by the rules now (the same job the scheduler runs; it commits
    batch by batch)."""
    return FreshnessSummaryRead.model_validate(run_freshness(session, settings))


# --- verification ----------------------------------------------------------------------------------


@router.get("/pending", response_model=Page[ExpertView], response_model_exclude_unset=True)
def pending_experts(
    session: SessionDep,
    settings: ProfilesSettingsDep,
    admin: AdminDep,
    page: PageDep,
    status: Literal["pending", "rejected"] = "pending",
) -> Page[ExpertView]:
    """Entries expert accounts created that wait for the register check (or were rejected)."""
    return service.list_experts(
        session, settings, admin, ExpertFilter(verification=status), limit=page.limit, offset=page.offset
    )


@router.get("/claims", response_model=Page[ClaimRead])
def contested_claims(
    session: SessionDep, admin: AdminDep, page: PageDep, status: DecisionStatus | None = "open"
) -> Page[ClaimRead]:
    """Contested claims: an account asked for a registration number an entry already holds."""
    return service.list_claims(session, admin, status=status, limit=page.limit, offset=page.offset)


@router.post("/claims/{claim_id}/accept", response_model=ClaimRead)
def accept_claim(claim_id: str, session: SessionDep, settings: ProfilesSettingsDep, admin: AdminDep) -> ClaimRead:
    """The claimant holds the number (checked against the register): the entry becomes theirs, verified."""
    claim = service.accept_claim(session, settings, admin, claim_id)
    session.commit()
    return claim


@router.post("/claims/{claim_id}/reject", response_model=ClaimRead)
def reject_claim(claim_id: str, body: Rejection, session: SessionDep, admin: AdminDep) -> ClaimRead:
    claim = service.reject_claim(session, admin, claim_id, body.reason)
    session.commit()
    return claim


@router.get("/corrections", response_model=Page[CorrectionRead])
def correction_requests(
    session: SessionDep, admin: AdminDep, page: PageDep, status: DecisionStatus | None = "open"
) -> Page[CorrectionRead]:
    """Experts' requests to correct regulated data, oldest first."""
    return service.list_corrections(session, admin, status=status, limit=page.limit, offset=page.offset)


@router.post("/corrections/{correction_id}/accept", response_model=CorrectionRead)
def accept_correction(
    correction_id: str, session: SessionDep, settings: ProfilesSettingsDep, admin: AdminDep
) -> CorrectionRead:
    correction = service.accept_correction(session, settings, admin, correction_id)
    session.commit()
    return correction


@router.post("/corrections/{correction_id}/reject", response_model=CorrectionRead)
def reject_correction(correction_id: str, body: Rejection, session: SessionDep, admin: AdminDep) -> CorrectionRead:
    correction = service.reject_correction(session, admin, correction_id, body.reason)
    session.commit()
    return correction


@router.post("/{expert_id}/verify", response_model=ExpertView, response_model_exclude_unset=True)
def verify_expert(expert_id: str, session: SessionDep, settings: ProfilesSettingsDep, admin: AdminDep) -> ExpertView:
    """Checked against the official register: the entry is listed (public, searchable, ranked)."""
    view = service.verify_expert(session, settings, admin, expert_id)
    session.commit()
    return view


@router.post("/{expert_id}/reject", response_model=ExpertView, response_model_exclude_unset=True)
def reject_expert(
    expert_id: str, body: Rejection, session: SessionDep, settings: ProfilesSettingsDep, admin: AdminDep
) -> ExpertView:
    """The entry does not match the register: it stays off the list and the expert is told why."""
    view = service.reject_expert(session, settings, admin, expert_id, body.reason)
    session.commit()
    return view


# --- the search index's source (tsunagu search reindex) -------------------------------------------------


@router.get("/published", response_model=Page[PublishedExpertRead])
def published_experts(session: SessionDep, _admin: AdminDep, page: PageDep) -> Page[PublishedExpertRead]:
    """Every listed entry's public view and version, in id order: what the search index should hold."""
    return service.published_experts(session, limit=page.limit, offset=page.offset)
