"""/admin/experts: bulk import and export of the list, and the freshness job on demand (admins only)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse

from tsunagu.auth import Principal, Role, require_authenticated
from tsunagu.db import utcnow

from services.profiles.freshness import run_freshness
from services.profiles.importer import export_csv_chunks, import_experts
from services.profiles.service import ProfilesService

IMPORT_PATH = "/admin/experts/import"


def _require_admin(principal: Principal) -> None:
    require_authenticated(principal)
    principal.require(Role.ADMIN)


def build_router(service: ProfilesService, principal_dependency) -> APIRouter:  # noqa: ANN001
    router = APIRouter(prefix="/admin/experts", tags=["admin"])
    Caller = Depends(principal_dependency)

    @router.post("/import")
    def import_csv(
        file: UploadFile = File(..., description="CSV（UTF-8 または Shift_JIS/CP932）"),
        encoding: Literal["auto", "utf-8", "cp932"] = Form(default="auto"),
        dry_run: bool = Form(default=False),
        principal: Principal = Caller,
    ) -> dict[str, Any]:
        """Upsert the rows of a CSV; bad rows come back in the report (line, field, reason) unwritten."""
        _require_admin(principal)
        report = import_experts(service.engine, service.settings, file.file, encoding=encoding, dry_run=dry_run)
        if report.created or report.updated:
            service.events_written()
        return report.as_dict()

    @router.get("/export")
    def export_csv(
        principal: Principal = Caller,
        encoding: Literal["utf-8", "cp932"] = Query(default="utf-8"),
    ) -> StreamingResponse:
        """The whole list in the import format (UTF-8 with BOM, or CP932 for older Excel)."""
        _require_admin(principal)
        filename = f"tsunagu-experts-{utcnow():%Y%m%d-%H%M%S}.csv"
        return StreamingResponse(
            export_csv_chunks(service.engine, encoding),
            media_type=f"text/csv; charset={'utf-8' if encoding == 'utf-8' else 'shift_jis'}",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @router.post("/freshness/run")
    def run_freshness_now(principal: Principal = Caller) -> dict[str, Any]:
        """Deactivate, remind and reactivate by the rules now (the same job the scheduler runs)."""
        _require_admin(principal)
        summary = run_freshness(service.engine, service.settings)
        service.events_written()
        return summary

    return router
