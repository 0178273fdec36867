"""Support-staff screens: /broker (the requests of their prefectures with age, state and what is waiting
on whom), /broker/requests/{id} (the ranked shortlist with each reason, propose, withdraw, follow the case
to its end) and /map (supply against demand per 10,000 corporations on a 47-prefecture tile map, with the
METI regions, a legend and a table for screen readers). Hub staff read these too; proposing stays with
brokers (matching refuses anyone else, and the buttons are not offered)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.web import forms, regional
from gateway.web.pages import WebDep
from tsunagu.auth import Role
from tsunagu.reference import regions, self_diagnosis_questions

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
STAFF = (Role.BROKER, Role.HUB)
STATUS_ORDER = {"submitted": 0, "ranked": 1, "matched": 2, "completed": 3, "cancelled": 4}
OPEN_STATES = ("submitted", "ranked", "matched")


def waiting_on(request: dict[str, Any], proposals: list[dict[str, Any]]) -> tuple[str, str]:
    """(who, what) the case waits on: the next move and whose it is."""
    states = {p["state"] for p in proposals}
    status = request["status"]
    if status == "submitted":
        return "system", "システム: 候補者の選定中"
    if status == "ranked":
        if "accepted" in states:
            return "sme", "中小企業: 専門家の決定待ち"
        if "proposed" in states:
            return "expert", "専門家: 提案への回答待ち"
        return "broker", "支援機関: 専門家の提案待ち"
    if status == "matched":
        return "engagement", "支援中: 完了の記録待ち"
    return "none", "—"


@router.get("/broker", response_class=HTMLResponse)
async def broker_home(web: WebDep, status: Annotated[str, Query(max_length=20)] = "open") -> HTMLResponse:
    web.require(*STAFF)
    # "open": each open state asked on its own, so a long history never pushes an open case off the page.
    states = OPEN_STATES if status == "open" else ((status,) if status in STATUS_ORDER else (None,))
    pages = await web.api.gather(
        *(web.api.get("/api/v1/requests", limit=100, status=state) for state in states),
        web.api.get("/api/v1/proposals", limit=100),
    )
    proposals_page = pages[-1]
    by_request: dict[str, list[dict]] = {}
    for proposal in proposals_page["items"]:
        by_request.setdefault(proposal["request_id"], []).append(proposal)
    requests = [item for page in pages[:-1] for item in page["items"]]
    rows = []
    for request in requests:
        who, what = waiting_on(request, by_request.get(request["id"], []))
        rows.append({"request": request, "who": who, "what": what})
    rows.sort(key=lambda row: (STATUS_ORDER.get(row["request"]["status"], 9), row["request"]["created_at"]))
    return web.render(
        "broker.html",
        {"rows": rows, "status": status, "prefectures": web.caller.prefectures},
    )


@router.get("/broker/requests/{request_id}", response_class=HTMLResponse)
async def broker_request(web: WebDep, request_id: Id) -> HTMLResponse:
    web.require(*STAFF)
    request = await web.api.get(f"/api/v1/requests/{request_id}")
    ranking, proposals, history = await web.api.gather(
        web.api.get(f"/api/v1/requests/{request_id}/ranking"),
        web.api.get(f"/api/v1/requests/{request_id}/proposals", limit=100),
        web.api.get(f"/api/v1/requests/{request_id}/history"),
    )
    engagement_ids = [p["engagement_id"] for p in proposals["items"] if p.get("engagement_id")]
    engagements = await web.api.gather(*(web.api.get(f"/api/v1/engagements/{e}") for e in engagement_ids))
    open_ids = {p["expert_id"] for p in proposals["items"] if p["state"] in ("proposed", "accepted", "confirmed")}
    template = "_ranking.html" if web.request.headers.get("hx-request") == "true" else "broker_request.html"
    return web.render(
        template,
        {
            "request": request,
            "ranking": ranking,
            "proposals": proposals["items"],
            "history": history if isinstance(history, list) else history.get("items", []),
            "engagements": engagements,
            "questions": self_diagnosis_questions(),
            "is_open": request["status"] in ("submitted", "ranked"),
            "viewer": "broker",
            "can_propose": web.caller.role in (Role.BROKER, Role.ADMIN),
            "proposed_ids": open_ids,
            "waiting": waiting_on(request, proposals["items"])[1],
        },
    )


@router.post("/broker/requests/{request_id}/propose")
async def propose(web: WebDep, request_id: Id) -> RedirectResponse:
    web.require(Role.BROKER)
    form = await web.form()
    body = {"expert_id": forms.text(form, "expert_id"), "message": forms.text(form, "message")}
    answer = await web.api.post(f"/api/v1/requests/{request_id}/proposals", body)
    done = f"{answer.data['expert_name']}さんに提案しました。回答を待っています" if answer.is_ok else answer.message_ja
    return web.redirect(f"/broker/requests/{request_id}", done)


@router.post("/broker/requests/{request_id}/proposals/{proposal_id}/withdraw")
async def withdraw(web: WebDep, request_id: Id, proposal_id: Id) -> RedirectResponse:
    web.require(Role.BROKER)
    form = await web.form()
    reason = forms.text(form, "reason")
    answer = await web.api.post(f"/api/v1/proposals/{proposal_id}/withdraw", {"reason": reason} if reason else None)
    return web.redirect(f"/broker/requests/{request_id}", "提案を取り下げました" if answer.is_ok else answer.message_ja)


@router.post("/broker/requests/{request_id}/cancel")
async def cancel(web: WebDep, request_id: Id) -> RedirectResponse:
    web.require(Role.BROKER)
    form = await web.form()
    reason = forms.text(form, "reason")
    if not reason:
        return web.redirect(f"/broker/requests/{request_id}", "取消しの理由を入力してください")
    answer = await web.api.post(f"/api/v1/requests/{request_id}/cancel", {"reason": reason})
    return web.redirect(f"/broker/requests/{request_id}", "相談を取り消しました" if answer.is_ok else answer.message_ja)


@router.get("/map", response_class=HTMLResponse)
async def map_page(web: WebDep) -> HTMLResponse:
    web.require(*STAFF)
    cells = await regional.cells(web.api)
    total_experts = sum(c.experts for c in cells)
    total_requests = sum(c.requests for c in cells)
    by_region: dict[str, list] = {}
    for cell in cells:
        by_region.setdefault(cell.region_id, []).append(cell)
    return web.render(
        "map.html",
        {
            "cells": cells,
            "levels": regional.LEVELS,
            "regions": [(region, by_region.get(region.id, [])) for region in regions().values()],
            "total_experts": total_experts,
            "total_requests": total_requests,
            "mine": set(web.caller.prefectures),
        },
    )
