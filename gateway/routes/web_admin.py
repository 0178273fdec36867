"""The operator's screen (/admin): import the active-list CSV and read its row report, verify or reject
pending entries, decide correction requests, see stale and expired entries, replay dead-lettered events,
read the sign-in audit. Reads and changes go through the same APIs the operator could call (profiles' admin
paths through the gateway's map; the gateway's own dead letters and audit log directly)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from gateway import deadletters, repository, service
from gateway.schemas import AuditKind
from gateway.web import forms
from gateway.web.pages import Web, WebDep
from tsunagu.auth import Role
from tsunagu.errors import ApiError

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
STALE_DAYS = 180
SIGN_IN_KINDS = [AuditKind.SIGN_IN.value, AuditKind.SIGN_IN_FAILED.value, AuditKind.REFRESH_REUSED.value]
AUDIT_LABELS = {
    "sign_in": "ログイン",
    "sign_in_failed": "ログイン失敗",
    "refresh_token_reused": "トークン再利用（セッション終了）",
}


async def _admin_page(web: Web, report: dict | None = None, import_error: str = "") -> HTMLResponse:
    pending, corrections, stale, expired = await web.api.gather(
        web.api.call("GET", "/api/v1/admin/experts/pending", params={"limit": 50}),
        web.api.call("GET", "/api/v1/admin/experts/corrections", params={"limit": 50}),
        web.api.call("GET", "/api/v1/experts", params={"stale_days": STALE_DAYS, "active": "true", "limit": 20}),
        web.api.call(
            "GET", "/api/v1/experts", params={"status_reason": "registration_expired", "active": "false", "limit": 20}
        ),
    )
    try:
        letters, letters_error = await deadletters.newest(web.settings, 20), ""
    except ApiError as error:
        letters, letters_error = None, error.message_ja
    with Session(web.runtime.engine) as session:
        audit = service.audit_page(session, limit=30, offset=0, kinds=SIGN_IN_KINDS)
        ids = sorted({event.user_id for event in audit.items if event.user_id})
        who = {user.id: f"{user.display_name} <{user.email}>" for user in repository.users_by_ids(session, ids)}
    return web.render(
        "admin.html",
        {
            "report": report,
            "import_error": import_error,
            "pending": pending.data if pending.is_ok else None,
            "corrections": corrections.data if corrections.is_ok else None,
            "stale": stale.data if stale.is_ok else None,
            "expired": expired.data if expired.is_ok else None,
            "stale_days": STALE_DAYS,
            "letters": letters,
            "letters_error": letters_error,
            "audit": audit,
            "who": who,
            "audit_labels": AUDIT_LABELS,
        },
    )


@router.get("/admin", response_class=HTMLResponse)
async def admin_home(web: WebDep) -> HTMLResponse:
    web.require(Role.ADMIN)
    return await _admin_page(web)


@router.post("/admin/import", response_class=HTMLResponse)
async def import_csv(web: WebDep) -> HTMLResponse:
    web.require(Role.ADMIN)
    form = await web.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return await _admin_page(web, import_error="取り込むCSVファイルを選んでください")
    content = await upload.read()
    data = {
        "encoding": forms.text(form, "encoding") or "auto",
        "dry_run": "true" if forms.flag(form, "dry_run") else "false",
    }
    answer = await web.api.call(
        "POST",
        "/api/v1/admin/experts/import",
        files={"file": (upload.filename, content, "text/csv")},
        data=data,
    )
    if not answer.is_ok:
        return await _admin_page(web, import_error=answer.message_ja)
    return await _admin_page(web, report=answer.data)


@router.post("/admin/experts/{expert_id}/verify")
async def verify(web: WebDep, expert_id: Id) -> RedirectResponse:
    web.require(Role.ADMIN)
    await web.form()
    answer = await web.api.post(f"/api/v1/admin/experts/{expert_id}/verify")
    return web.redirect("/admin#pending", "確認済みにしました（掲載されます）" if answer.is_ok else answer.message_ja)


@router.post("/admin/experts/{expert_id}/reject")
async def reject(web: WebDep, expert_id: Id) -> RedirectResponse:
    web.require(Role.ADMIN)
    form = await web.form()
    reason = forms.text(form, "reason")
    if not reason:
        return web.redirect("/admin#pending", "却下の理由を入力してください")
    answer = await web.api.post(f"/api/v1/admin/experts/{expert_id}/reject", {"reason": reason})
    return web.redirect(
        "/admin#pending", "却下しました（本人に理由が伝わります）" if answer.is_ok else answer.message_ja
    )


@router.post("/admin/corrections/{correction_id}/{decision}")
async def decide_correction(
    web: WebDep, correction_id: Id, decision: Annotated[str, Path(pattern="^(accept|reject)$")]
) -> RedirectResponse:
    web.require(Role.ADMIN)
    form = await web.form()
    body = None
    if decision == "reject":
        reason = forms.text(form, "reason")
        if not reason:
            return web.redirect("/admin#corrections", "却下の理由を入力してください")
        body = {"reason": reason}
    answer = await web.api.post(f"/api/v1/admin/experts/corrections/{correction_id}/{decision}", body)
    done = "訂正を反映しました" if decision == "accept" else "訂正の依頼を却下しました"
    return web.redirect("/admin#corrections", done if answer.is_ok else answer.message_ja)


@router.post("/admin/dead-letters/{sequence}/replay")
async def replay(web: WebDep, sequence: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> RedirectResponse:
    web.require(Role.ADMIN)
    await web.form()
    try:
        result = await deadletters.replay(web.settings, sequence)
    except ApiError as error:
        return web.redirect("/admin#dead-letters", error.message_ja)
    return web.redirect("/admin#dead-letters", f"イベント {sequence} を {result.replayed_to} に再送しました")
