"""Engagements for everyone who takes part (/engagements, /engagements/{id}): the SME and the expert
complete, cancel and rate once each; covering brokers follow and may complete or cancel. Matching decides
who may do what; these pages only offer the buttons and show its answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.web import forms
from gateway.web.pages import Web, WebDep
from tsunagu.auth import Role

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def side_of(web: Web) -> str:
    return {Role.SME: "sme", Role.EXPERT: "expert"}.get(web.caller.role, "staff")


def _back(form: dict, engagement_id: str) -> str:
    target = forms.text(form, "next")
    return target if target.startswith("/") and not target.startswith("//") else f"/engagements/{engagement_id}"


@router.get("/engagements", response_class=HTMLResponse)
async def engagements_page(web: WebDep) -> HTMLResponse:
    web.require()
    page = await web.api.get("/api/v1/engagements", limit=100)
    return web.render("engagements.html", {"items": page["items"], "side": side_of(web)})


@router.get("/engagements/{engagement_id}", response_class=HTMLResponse)
async def engagement_page(web: WebDep, engagement_id: Id) -> HTMLResponse:
    web.require()
    engagement = await web.api.get(f"/api/v1/engagements/{engagement_id}")
    return web.render("engagement.html", {"g": engagement, "side": side_of(web)})


@router.post("/engagements/{engagement_id}/complete")
async def complete(web: WebDep, engagement_id: Id) -> RedirectResponse:
    web.require()
    form = await web.form()
    answer = await web.api.post(f"/api/v1/engagements/{engagement_id}/complete")
    message = "支援の完了を記録しました。評価をお願いします" if answer.is_ok else answer.message_ja
    return web.redirect(_back(form, engagement_id), message)


@router.post("/engagements/{engagement_id}/cancel")
async def cancel(web: WebDep, engagement_id: Id) -> RedirectResponse:
    web.require()
    form = await web.form()
    reason = forms.text(form, "reason")
    if not reason:
        return web.redirect(_back(form, engagement_id), "中止の理由を入力してください")
    answer = await web.api.post(f"/api/v1/engagements/{engagement_id}/cancel", {"reason": reason})
    return web.redirect(_back(form, engagement_id), "支援を中止しました" if answer.is_ok else answer.message_ja)


@router.post("/engagements/{engagement_id}/rate")
async def rate(web: WebDep, engagement_id: Id) -> RedirectResponse:
    web.require(Role.SME, Role.EXPERT)
    form = await web.form()
    stars = forms.number(form, "stars")
    if not isinstance(stars, int):
        return web.redirect(_back(form, engagement_id), "評価（星の数）を選んでください")
    body = {"stars": stars, "comment": forms.text(form, "comment")}
    answer = await web.api.post(f"/api/v1/engagements/{engagement_id}/ratings", body)
    return web.redirect(
        _back(form, engagement_id), "評価を送りました。ありがとうございます" if answer.is_ok else answer.message_ja
    )
