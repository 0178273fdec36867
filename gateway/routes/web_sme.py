"""SME screens: /requests (theirs, with states), /requests/new (topics in plain words, the 25 questions
of 5分でできる情報セキュリティ自社診断 as はい/いいえ/わからない, on-site or remote, budget, urgency) and
/requests/{id} (status, the ranked experts with why, the proposed experts, confirm one, cancel, complete,
rate, the history). Every read and action goes through the public API paths as the signed-in SME."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.web import forms
from gateway.web.pages import Web, WebDep
from tsunagu.auth import Role
from tsunagu.reference import prefectures, self_diagnosis_questions, topics

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
OPEN = ("submitted", "ranked")
ANSWERS = (("yes", "はい"), ("no", "いいえ"), ("unknown", "わからない"))


def diagnosis_groups() -> list[tuple[str, list]]:
    groups: dict[str, list] = {}
    for question in self_diagnosis_questions().values():
        groups.setdefault(question.group, []).append(question)
    return list(groups.items())


def _form_context(values: dict[str, Any], errors: dict[str, str], organizations: list[dict]) -> dict[str, Any]:
    items = list(topics().values())
    return {
        "values": values,
        "errors": errors,
        "organizations": organizations,
        "prefecture_options": [(p.code, p.name) for p in prefectures().values()],
        "topic_groups": [
            ("情報セキュリティ", [t for t in items if t.area == "security"]),
            ("DX・デジタル化", [t for t in items if t.area != "security"]),
        ],
        "diagnosis_groups": diagnosis_groups(),
        "answers": ANSWERS,
    }


async def _organizations(web: Web) -> list[dict]:
    answer = await web.api.call("GET", "/api/v1/organizations", params={"limit": 50})
    return answer.data["items"] if answer.is_ok else []


@router.get("/requests", response_class=HTMLResponse)
async def my_requests(web: WebDep) -> HTMLResponse:
    caller = web.require(Role.SME)
    if caller.is_regional_staff:
        return web.redirect("/broker")  # type: ignore[return-value]
    page, organizations, invitations = await web.api.gather(
        web.api.get("/api/v1/requests", limit=100),
        _organizations(web),
        web.api.call("GET", "/api/v1/organizations/invitations", params={"limit": 20}),
    )
    return web.render(
        "requests.html",
        {
            "page": page,
            "organizations": organizations,
            "invitations": invitations.data["items"] if invitations.is_ok else [],
            "prefecture_options": [(p.code, p.name) for p in prefectures().values()],
            "values": {},
            "errors": {},
        },
    )


@router.post("/organizations/new")
async def new_organization(web: WebDep) -> RedirectResponse:
    """An SME signed up alone registers its company (the requests then belong to it; colleagues can be
    invited through the API)."""
    web.require(Role.SME)
    form = await web.form()
    body: dict[str, Any] = {"name": forms.text(form, "name"), "prefecture": forms.text(form, "prefecture")}
    if forms.text(form, "industry"):
        body["industry"] = forms.text(form, "industry")
    if forms.text(form, "employees"):
        body["employees"] = forms.number(form, "employees")
    answer = await web.api.post("/api/v1/organizations", body)
    if answer.is_ok:
        return web.redirect("/requests", f"{answer.data['name']}を登録しました")
    reasons = "、".join(f"{name}: {reason}" for name, reason in answer.fields.items()) or answer.message_ja
    return web.redirect("/requests", f"会社を登録できませんでした（{reasons}）")


@router.post("/organizations/invitations/{invitation_id}/{decision}")
async def answer_invitation(
    web: WebDep, invitation_id: Id, decision: Annotated[str, Path(pattern="^(accept|decline)$")]
) -> RedirectResponse:
    web.require(Role.SME)
    await web.form()
    answer = await web.api.post(f"/api/v1/organizations/invitations/{invitation_id}/{decision}")
    done = "招待を受けました" if decision == "accept" else "招待を断りました"
    return web.redirect("/requests", done if answer.is_ok else answer.message_ja)


@router.get("/requests/new", response_class=HTMLResponse)
async def new_request_page(web: WebDep) -> HTMLResponse:
    web.require(Role.SME)
    organizations = await _organizations(web)
    values: dict[str, Any] = {"delivery": "either", "urgency": "normal", "topics": [], "diagnosis": {}}
    if organizations:
        values["organization_id"] = organizations[0]["id"]
        values["prefecture"] = organizations[0]["prefecture"]
    return web.render("request_new.html", _form_context(values, {}, organizations))


@router.post("/requests/new", response_class=HTMLResponse)
async def new_request(web: WebDep):
    web.require(Role.SME)
    form = await web.form()
    diagnosis = {
        str(no): forms.text(form, f"q{no}")
        for no in self_diagnosis_questions()
        if forms.text(form, f"q{no}") in ("yes", "no", "unknown")
    }
    body: dict[str, Any] = {
        "title": forms.text(form, "title"),
        "description": forms.text(form, "description"),
        "prefecture": forms.text(form, "prefecture"),
        "delivery": forms.text(form, "delivery") or "either",
        "topics": forms.many(form, "topics"),
        "self_diagnosis": diagnosis,
        "skills": forms.tags(form, "skills"),
        "budget_yen_max": forms.number(form, "budget_yen_max"),
        "urgency": forms.text(form, "urgency") or "normal",
        "draft": forms.text(form, "action") == "draft",
    }
    if forms.text(form, "industry"):
        body["industry"] = forms.text(form, "industry")
    if forms.text(form, "organization_id"):
        body["organization_id"] = forms.text(form, "organization_id")
    values = {
        **{key: forms.text(form, key) for key in ("title", "description", "prefecture", "delivery", "urgency")},
        **{key: forms.text(form, key) for key in ("skills", "industry", "budget_yen_max", "organization_id")},
        "topics": body["topics"],
        "diagnosis": diagnosis,
    }
    errors: dict[str, str] = {}
    if not body["topics"] and not [a for a in diagnosis.values() if a != "yes"]:
        errors["topics"] = "相談したいテーマを1つ以上選ぶか、自社診断に回答してください"
    if not errors:
        answer = await web.api.post("/api/v1/requests", body)
        for _ in range(10):  # a company registered a moment ago reaches matching through an event
            if answer.status != 422 or "organization_id" not in answer.fields:
                break
            await asyncio.sleep(0.3)
            answer = await web.api.post("/api/v1/requests", body)
        if answer.is_ok:
            created = answer.data
            done = "下書きを保存しました" if body["draft"] else "相談を受け付けました。候補の専門家を選んでいます"
            return web.redirect(f"/requests/{created['id']}", done)
        errors = answer.fields or {"form": answer.message_ja}
        if "self_diagnosis" in errors:
            errors["diagnosis"] = errors.pop("self_diagnosis")
    organizations = await _organizations(web)
    return web.render("request_new.html", _form_context(values, errors, organizations), status_code=422)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(web: WebDep, request_id: Id) -> HTMLResponse:
    caller = web.require()
    if caller.is_regional_staff or caller.role == Role.ADMIN:
        return web.redirect(f"/broker/requests/{request_id}")  # type: ignore[return-value]
    if caller.role == Role.EXPERT:
        return web.redirect("/me/proposals")  # type: ignore[return-value]
    request = await web.api.get(f"/api/v1/requests/{request_id}")
    ranking, proposals, history = await web.api.gather(
        web.api.get(f"/api/v1/requests/{request_id}/ranking"),
        web.api.get(f"/api/v1/requests/{request_id}/proposals", limit=100),
        web.api.get(f"/api/v1/requests/{request_id}/history"),
    )
    engagement_ids = [p["engagement_id"] for p in proposals["items"] if p.get("engagement_id")]
    engagements = await web.api.gather(*(web.api.get(f"/api/v1/engagements/{e}") for e in engagement_ids))
    template = "_ranking.html" if web.request.headers.get("hx-request") == "true" else "request.html"
    return web.render(
        template,
        {
            "request": request,
            "ranking": ranking,
            "proposals": proposals["items"],
            "history": history if isinstance(history, list) else history.get("items", []),
            "engagements": engagements,
            "questions": self_diagnosis_questions(),
            "is_open": request["status"] in OPEN,
            "viewer": "sme",
        },
    )


@router.post("/requests/{request_id}/cancel")
async def cancel_request(web: WebDep, request_id: Id) -> RedirectResponse:
    web.require(Role.SME, Role.BROKER)
    form = await web.form()
    reason = forms.text(form, "reason") or "依頼者による取消し"
    answer = await web.api.post(f"/api/v1/requests/{request_id}/cancel", {"reason": reason})
    back = f"/requests/{request_id}"
    return web.redirect(back, "相談を取り消しました" if answer.is_ok else answer.message_ja)


@router.post("/requests/{request_id}/submit")
async def submit_draft(web: WebDep, request_id: Id) -> RedirectResponse:
    web.require(Role.SME)
    await web.form()
    answer = await web.api.post(f"/api/v1/requests/{request_id}/submit")
    return web.redirect(f"/requests/{request_id}", "相談を送信しました" if answer.is_ok else answer.message_ja)


@router.post("/requests/{request_id}/proposals/{proposal_id}/confirm")
async def confirm(web: WebDep, request_id: Id, proposal_id: Id) -> RedirectResponse:
    web.require(Role.SME)
    await web.form()
    answer = await web.api.post(f"/api/v1/proposals/{proposal_id}/confirm")
    message = "専門家を決定しました。支援が始まります" if answer.is_ok else answer.message_ja
    return web.redirect(f"/requests/{request_id}", message)
